import { beforeAll, describe, expect, it } from 'vitest';
import type { CloudFormationTemplate } from '../support/packaged-template';
import { loadPackagedTemplate, resourcesOfType } from '../support/packaged-template';
import { QUEUED_RUN_EXPIRY_SECONDS } from '../../lib/runs/run-ledger';
import { METRIC, METRICS_NAMESPACE, METRICS_SERVICE } from '../../lib/metrics';
import { conditionHolds, requireFunction } from '../support/template-inspection';

/** Issue 4, "Failures in AWS": retries, the failed-runs queue, and alarms that reach people. */

const PACKAGING_TIMEOUT = 300_000;
const FOURTEEN_DAYS = 14 * 24 * 60 * 60;

let template: CloudFormationTemplate;

beforeAll(async () => {
  template = await loadPackagedTemplate('dev');
}, PACKAGING_TIMEOUT);

function resource(id: string) {
  const found = template.Resources[id];
  if (!found) throw new Error(`The template has no resource ${id}`);
  return found;
}

describe('asynchronous invocations of the workers', () => {
  it.each(['exportWorker', 'exportSchemaWorker', 'timeLimitedWorker', 'restoreWorker', 'restoreSchemaWorker'])('%s: bounded retries and event age, failures to the failed-runs queue', (key) => {
    const worker = requireFunction(template, key);
    const configs = resourcesOfType(template, 'AWS::Lambda::EventInvokeConfig').filter(
      ([, c]) => (c.Properties?.FunctionName as { Ref?: string }).Ref === worker.logicalId,
    );
    expect(configs, `${key} has one EventInvokeConfig`).toHaveLength(1);
    const properties = configs[0]![1].Properties!;
    expect(properties.Qualifier).toBe('$LATEST');
    expect(properties.MaximumRetryAttempts).toBeGreaterThanOrEqual(0);
    expect(properties.MaximumRetryAttempts).toBeLessThanOrEqual(2);
    expect(properties.MaximumEventAgeInSeconds).toBeGreaterThanOrEqual(60);
    expect(properties.MaximumEventAgeInSeconds).toBeLessThanOrEqual(6 * 60 * 60);
    // The ledger expires a queued run only once its invocation event can no longer arrive.
    expect(properties.MaximumEventAgeInSeconds).toBeLessThan(QUEUED_RUN_EXPIRY_SECONDS);
    expect(properties.DestinationConfig).toEqual({ OnFailure: { Destination: { 'Fn::GetAtt': ['JobsDeadLetterQueue', 'Arn'] } } });
  });

  it('gives no API function an asynchronous invoke config (they are called synchronously by API Gateway)', () => {
    const configured = resourcesOfType(template, 'AWS::Lambda::EventInvokeConfig').map(
      ([, c]) => (c.Properties?.FunctionName as { Ref?: string }).Ref,
    );
    expect(configured.sort()).toEqual([
      'ExportSchemaWorkerLambdaFunction',
      'ExportVerifierLambdaFunction',
      'ExportWorkerLambdaFunction',
      'RestoreSchemaWorkerLambdaFunction',
      'RestoreWorkerLambdaFunction',
      'TimeLimitedWorkerLambdaFunction',
    ]);
  });
});

describe('the failed-runs queue', () => {
  it('keeps messages 14 days, encrypted at rest', () => {
    const queue = resource('JobsDeadLetterQueue');
    expect(queue.Type).toBe('AWS::SQS::Queue');
    expect(queue.Properties?.MessageRetentionPeriod).toBe(FOURTEEN_DAYS);
    expect(queue.Properties?.SqsManagedSseEnabled === true || queue.Properties?.KmsMasterKeyId !== undefined, 'SSE on').toBe(true);
  });

  it('raises an alarm, sent to the SNS topic, as soon as a message is in it', () => {
    const alarms = resourcesOfType(template, 'AWS::CloudWatch::Alarm').filter(
      ([, a]) => a.Properties?.Namespace === 'AWS/SQS' && a.Properties?.MetricName === 'ApproximateNumberOfMessagesVisible',
    );
    expect(alarms).toHaveLength(1);
    const alarm = alarms[0]![1].Properties!;
    expect(alarm.Dimensions).toEqual([{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['JobsDeadLetterQueue', 'QueueName'] } }]);
    expect(alarm).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 1 });
    expect(alarm.AlarmActions).toEqual([{ Ref: 'JobsAlarmTopic' }]);
    expect(resource('JobsAlarmTopic').Type).toBe('AWS::SNS::Topic');
  });

  it.each(['exportWorker', 'exportSchemaWorker', 'timeLimitedWorker', 'restoreWorker', 'restoreSchemaWorker'])('%s: an alarm on its Errors, sent to the same topic', (key) => {
    const worker = requireFunction(template, key);
    const alarms = resourcesOfType(template, 'AWS::CloudWatch::Alarm').filter(
      ([, a]) =>
        a.Properties?.Namespace === 'AWS/Lambda' &&
        a.Properties?.MetricName === 'Errors' &&
        JSON.stringify(a.Properties?.Dimensions) === JSON.stringify([{ Name: 'FunctionName', Value: { Ref: worker.logicalId } }]),
    );
    expect(alarms).toHaveLength(1);
    expect(alarms[0]![1].Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', AlarmActions: [{ Ref: 'JobsAlarmTopic' }] });
  });

  it('subscribes an e-mail address to the topic only when the operators give one', () => {
    const subscriptions = resourcesOfType(template, 'AWS::SNS::Subscription');
    expect(subscriptions).toHaveLength(1);
    const [, subscription] = subscriptions[0]!;
    expect(subscription.Properties).toMatchObject({ TopicArn: { Ref: 'JobsAlarmTopic' }, Protocol: 'email' });
    expect(subscription.Condition, 'the subscription is conditional').toBeDefined();
    if (!process.env.ALARM_EMAIL) expect(conditionHolds(template, subscription.Condition!), 'no ALARM_EMAIL, no subscription').toBe(false);
  });
});

describe('the CloudWatch dashboard of the jobs', () => {
  /** The body, with each ${...} of its Fn::Sub replaced by a marker naming what it refers to. */
  function dashboardBody(): { widgets: { type: string; properties: Record<string, unknown> }[] } {
    const dashboards = resourcesOfType(template, 'AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    const body = dashboards[0]![1].Properties?.DashboardBody as { 'Fn::Sub': string };
    return JSON.parse(body['Fn::Sub'].replace(/\$\{([^}]+)\}/g, (_, name: string) => `<${name}>`)) as ReturnType<typeof dashboardBody>;
  }

  it('charts the metrics the workers write: their namespace, service and names (lib/metrics.ts)', () => {
    const metricWidgets = dashboardBody().widgets.filter((w) => w.type === 'metric');
    const lines = metricWidgets.flatMap((w) => w.properties.metrics as unknown[][]);
    const ours = lines.filter((line) => line[0] === METRICS_NAMESPACE);
    expect(ours.length).toBeGreaterThan(0);
    for (const line of ours) {
      expect(Object.values(METRIC)).toContain(line[1]);
      expect(line.slice(2, 6)).toEqual(['service', METRICS_SERVICE, 'job', expect.stringMatching(/^(export|time-limited|restore)$/)]);
    }
    const searches = lines.map((line) => (line[0] as { expression?: string }).expression).filter((e): e is string => typeof e === 'string');
    expect(searches.length).toBeGreaterThan(0);
    for (const search of searches) {
      expect(search).toContain(`{${METRICS_NAMESPACE},service,job,schema}`);
      expect(Object.values(METRIC)).toContain(/MetricName="(\w+)"/.exec(search)?.[1]);
    }
    // Per job: duration and outcome; per export schema: duration, rows, bytes and failures; per restored schema: duration and failures.
    expect(new Set(ours.map((line) => `${String(line[1])} ${String(line[5])}`))).toEqual(
      new Set([
        'Duration export', 'Duration time-limited', 'Duration restore',
        'Succeeded export', 'Failed export', 'Skipped export',
        'Succeeded time-limited', 'Failed time-limited', 'Skipped time-limited', 'Rows time-limited',
        'Succeeded restore', 'Failed restore',
        'Cancelled export', 'Cancelled restore', 'Cancelled time-limited',
      ]),
    );
    expect(searches.map((s) => `${/MetricName="(\w+)"/.exec(s)?.[1]} ${/job="([\w-]+)"/.exec(s)?.[1]}`).sort()).toEqual([
      'Bytes export', 'Duration export', 'Duration restore', 'Failed export', 'Failed restore', 'Rows export',
    ]);
  });

  it('shows every alarm of the stack', () => {
    const alarmWidget = dashboardBody().widgets.find((w) => w.type === 'alarm');
    const alarms = resourcesOfType(template, 'AWS::CloudWatch::Alarm').map(([id]) => `<${id}.Arn>`);
    expect(alarms.length).toBeGreaterThan(0);
    expect([...(alarmWidget?.properties.alarms as string[])].sort()).toEqual(alarms.sort());
  });
});
