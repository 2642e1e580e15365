import { beforeAll, describe, expect, it } from 'vitest';
import { parseWorkerEvent } from '../../lib/jobs/worker-event';
import { readScheduleSettings } from '../../lib/schedule/next-run';
import { requireFunction } from '../support/template-inspection';
import type { CloudFormationTemplate } from '../support/packaged-template';
import { loadPackagedTemplate, resourcesOfType } from '../support/packaged-template';

/** Issues 2 and 3: the schedules as `sls package` writes them into the CloudFormation template. */

const PACKAGING_TIMEOUT = 300_000;

let template: CloudFormationTemplate;

beforeAll(async () => {
  template = await loadPackagedTemplate('dev');
}, PACKAGING_TIMEOUT);

function targetsOf(properties: Record<string, unknown>): { Arn: unknown; Input?: string }[] {
  return (properties.Targets as { Arn: unknown; Input?: string }[] | undefined) ?? [properties.Target as { Arn: unknown; Input?: string }];
}

/** Every schedule (EventBridge Scheduler schedules and EventBridge rules) that invokes `functionLogicalId`. */
function schedulesOf(functionLogicalId: string) {
  return [...resourcesOfType(template, 'AWS::Scheduler::Schedule'), ...resourcesOfType(template, 'AWS::Events::Rule')]
    .map(([id, resource]) => ({ id, type: resource.Type, properties: resource.Properties ?? {} }))
    .filter(({ properties }) =>
      targetsOf(properties).some((target) => JSON.stringify(target.Arn) === JSON.stringify({ 'Fn::GetAtt': [functionLogicalId, 'Arn'] })),
    );
}

describe('the schedules in the packaged template', () => {
  it('runs timeLimitedWorker daily at 20:15 Europe/London with EventBridge Scheduler, enabled', () => {
    const schedules = schedulesOf('TimeLimitedWorkerLambdaFunction');
    expect(schedules).toHaveLength(1);
    const [{ type, properties }] = schedules as [(typeof schedules)[number]];
    expect(type).toBe('AWS::Scheduler::Schedule');
    expect(properties.ScheduleExpression).toBe('cron(15 20 * * ? *)');
    expect(properties.ScheduleExpressionTimezone).toBe('Europe/London');
    expect(properties.State).toBe('ENABLED');
    expect(properties.FlexibleTimeWindow).toEqual({ Mode: 'OFF' });
  });

  it('declares a schedule for exportWorker, disabled', () => {
    const schedules = schedulesOf('ExportWorkerLambdaFunction');
    expect(schedules).toHaveLength(1);
    expect(schedules[0]!.properties.State).toBe('DISABLED');
  });

  it('sends each worker an event it reads as a scheduled trigger', () => {
    for (const { properties } of [...schedulesOf('TimeLimitedWorkerLambdaFunction'), ...schedulesOf('ExportWorkerLambdaFunction')]) {
      const [target] = targetsOf(properties);
      expect(parseWorkerEvent(JSON.parse(target!.Input!))).toEqual({ kind: 'new', trigger: 'schedule', input: undefined });
    }
  });
});

describe('the schedules the dashboard shows (GET /jobs/{job}/runs)', () => {
  it('are the deployed ones: listRuns reads each worker schedule exactly as the template deploys it', () => {
    const schedules = readScheduleSettings(requireFunction(template, 'listRuns').environment);
    const deployed = [
      { job: 'export', functionLogicalId: 'ExportWorkerLambdaFunction' },
      { job: 'time-limited', functionLogicalId: 'TimeLimitedWorkerLambdaFunction' },
    ];
    expect(schedules.map((s) => s.job).sort()).toEqual(deployed.map((d) => d.job));
    for (const { job, functionLogicalId } of deployed) {
      const [resource] = schedulesOf(functionLogicalId);
      const shown = schedules.find((s) => s.job === job)!;
      expect(shown.expression.expression, job).toBe(resource!.properties.ScheduleExpression);
      expect(shown.enabled ? 'ENABLED' : 'DISABLED', job).toBe(resource!.properties.State);
      // EventBridge rules have no time zone and run in UTC.
      expect(shown.timeZone, job).toBe(resource!.properties.ScheduleExpressionTimezone ?? 'UTC');
      expect(shown.method, job).toBe(resource!.type === 'AWS::Scheduler::Schedule' ? 'scheduler' : 'eventBus');
    }
  });
});
