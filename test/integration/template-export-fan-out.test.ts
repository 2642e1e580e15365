import { beforeAll, describe, expect, it } from 'vitest';
import { EXPORT_STEP_ATTEMPTS } from '../../lib/jobs/export-steps';
import { QUEUED_RUN_EXPIRY_SECONDS } from '../../lib/runs/lease-rules';
import { RUN_LEASE_WHILE_STEPS_MS } from '../../lib/runs/step-ledger';
import type { CloudFormationTemplate } from '../support/packaged-template';
import { loadPackagedTemplate } from '../support/packaged-template';
import { eventInvokeConfigOf, requireFunction } from '../support/template-inspection';

/** Issue 10: the export fans out, one asynchronous invocation of exportSchemaWorker per schema. */

const PACKAGING_TIMEOUT = 300_000;

let template: CloudFormationTemplate;
let threeAtOnce: CloudFormationTemplate;

beforeAll(async () => {
  template = await loadPackagedTemplate('dev');
  threeAtOnce = await loadPackagedTemplate('dev', { EXPORT_CONCURRENCY: '3' });
}, 2 * PACKAGING_TIMEOUT);

describe('exportSchemaWorker in the packaged template', () => {
  it('retries each step once (the attempts the step ledger counts on), then sends it to the failed-runs queue', () => {
    const worker = requireFunction(template, 'exportSchemaWorker');
    const config = eventInvokeConfigOf(template, worker.logicalId);
    expect(config.MaximumRetryAttempts).toBe(EXPORT_STEP_ATTEMPTS - 1);
    expect(config.MaximumEventAgeInSeconds).toBe(3600);
    // A queued step is given up only once its event can no longer arrive.
    expect(config.MaximumEventAgeInSeconds).toBeLessThan(QUEUED_RUN_EXPIRY_SECONDS);
    expect(config.DestinationConfig).toEqual({ OnFailure: { Destination: { 'Fn::GetAtt': ['JobsDeadLetterQueue', 'Arn'] } } });
  });

  it('reserves EXPORT_CONCURRENCY executions (default 6, one per schema) and tells the coordinator the same number', () => {
    for (const [t, expected] of [
      [template, 6],
      [threeAtOnce, 3],
    ] as const) {
      const worker = requireFunction(t, 'exportSchemaWorker');
      expect(Number(worker.properties.ReservedConcurrentExecutions)).toBe(expected);
      expect(requireFunction(t, 'exportWorker').environment.EXPORT_CONCURRENCY).toBe(String(expected));
      expect(worker.environment.EXPORT_CONCURRENCY).toBe(String(expected));
    }
  });

  it('gives it the memory, /tmp storage and timeout of one schema export', () => {
    const worker = requireFunction(template, 'exportSchemaWorker');
    expect(worker.properties.Timeout).toBe(900);
    // Two vCPUs: tables of the schema read and compressed at once (docs/operations.md, "Sizing the schema worker").
    expect(worker.properties.MemorySize).toBe(3538);
    expect(worker.properties.EphemeralStorage).toEqual({ Size: 10240 });
    // The run's lease while its steps run covers a step's longest life: queued, then a full timeout.
    expect(RUN_LEASE_WHILE_STEPS_MS).toBeGreaterThanOrEqual((QUEUED_RUN_EXPIRY_SECONDS + Number(worker.properties.Timeout)) * 1000);
  });

  it('makes exportWorker a light coordinator that invokes the schema worker by its full name and holds the snapshot as long as Lambda allows', () => {
    const coordinator = requireFunction(template, 'exportWorker');
    // It waits, holding the run's snapshot, until every step has imported it: Lambda's longest timeout.
    expect(Number(coordinator.properties.Timeout)).toBe(900);
    // Every step of a run can start at once (assertEveryStepCanStartAtOnce checks it at cold start).
    expect(Number(requireFunction(template, 'exportSchemaWorker').properties.ReservedConcurrentExecutions)).toBeGreaterThanOrEqual(
      (coordinator.environment.EXPORT_SCHEMAS ?? '').split(',').length,
    );
    expect(coordinator.environment.EXPORT_SCHEMA_WORKER_FUNCTION).toBe('water-abstraction-jobs-dev-exportSchemaWorker');
    expect(requireFunction(template, 'exportSchemaWorker').properties.FunctionName).toBe('water-abstraction-jobs-dev-exportSchemaWorker');
    expect(coordinator.properties.EphemeralStorage).toBeUndefined();
  });
});
