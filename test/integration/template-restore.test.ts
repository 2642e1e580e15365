import { beforeAll, describe, expect, it } from 'vitest';
import { RESTORE_STEP_ATTEMPTS } from '../../lib/jobs/restore-steps';
import { QUEUED_RUN_EXPIRY_SECONDS } from '../../lib/runs/lease-rules';
import { RUN_LEASE_WHILE_STEPS_MS } from '../../lib/runs/step-ledger';
import type { CloudFormationTemplate } from '../support/packaged-template';
import { loadPackagedTemplate } from '../support/packaged-template';
import { eventInvokeConfigOf, requireFunction } from '../support/template-inspection';

/** The restore job in the packaged template: its coordinator and its schema worker, each with its own limits. */

const PACKAGING_TIMEOUT = 300_000;

let template: CloudFormationTemplate;
let twoAtOnce: CloudFormationTemplate;

beforeAll(async () => {
  template = await loadPackagedTemplate('dev');
  twoAtOnce = await loadPackagedTemplate('dev', { RESTORE_CONCURRENCY: '2', RESTORE_DATABASE_URL_PARAMETER: '/reporting/prod/url' });
}, 2 * PACKAGING_TIMEOUT);

describe('restoreSchemaWorker and restoreWorker in the packaged template', () => {
  it('retries a restore step once (the attempts the step counts on), then sends it to the failed-runs queue', () => {
    const config = eventInvokeConfigOf(template, requireFunction(template, 'restoreSchemaWorker').logicalId);
    expect(config.MaximumRetryAttempts).toBe(RESTORE_STEP_ATTEMPTS - 1);
    expect(config.MaximumEventAgeInSeconds).toBeLessThan(QUEUED_RUN_EXPIRY_SECONDS);
    expect(config.DestinationConfig).toEqual({ OnFailure: { Destination: { 'Fn::GetAtt': ['JobsDeadLetterQueue', 'Arn'] } } });
  });

  it('reserves RESTORE_CONCURRENCY executions of the schema worker (default 3): the target\'s connections, whatever fans out', () => {
    for (const [t, expected] of [
      [template, 3],
      [twoAtOnce, 2],
    ] as const) {
      const worker = requireFunction(t, 'restoreSchemaWorker');
      expect(Number(worker.properties.ReservedConcurrentExecutions)).toBe(expected);
      expect(requireFunction(t, 'restoreWorker').environment.RESTORE_CONCURRENCY).toBe(String(expected));
    }
    expect(requireFunction(template, 'restoreWorker').properties.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('gives the schema worker the timeout and memory of one schema\'s load, and its run a lease that covers it', () => {
    const worker = requireFunction(template, 'restoreSchemaWorker');
    expect(worker.properties.Timeout).toBe(900);
    expect(worker.properties.MemorySize).toBe(3538);
    expect(RUN_LEASE_WHILE_STEPS_MS).toBeGreaterThanOrEqual((QUEUED_RUN_EXPIRY_SECONDS + Number(worker.properties.Timeout)) * 1000);
    const coordinator = requireFunction(template, 'restoreWorker');
    expect(coordinator.environment.RESTORE_SCHEMA_WORKER_FUNCTION).toBe(worker.properties.FunctionName);
  });

  it('names the target by an SSM parameter (set by the operators), never a connection string', () => {
    for (const key of ['restoreWorker', 'restoreSchemaWorker']) {
      expect(requireFunction(template, key).environment.RESTORE_DATABASE_URL_PARAMETER).toBe('/water-abstraction-jobs/dev/restore-database-url');
      expect(requireFunction(twoAtOnce, key).environment.RESTORE_DATABASE_URL_PARAMETER).toBe('/reporting/prod/url');
      expect(requireFunction(template, key).environment.RESTORE_DATABASE_URL).toBeUndefined();
    }
  });
});
