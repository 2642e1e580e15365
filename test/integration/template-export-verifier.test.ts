import { beforeAll, describe, expect, it } from 'vitest';
import type { CloudFormationTemplate } from '../support/packaged-template';
import { loadPackagedTemplate, resourcesOfType } from '../support/packaged-template';
import { conditionHolds, describe as show, permissionsOfRole, requireFunction } from '../support/template-inspection';
import { VERIFICATION_FAILED_MESSAGE } from '../../lib/verification/verify-uploaded-tarball';

/** Issue 14: exportVerifier as deployed — its trigger, its role, its retries and dead-letter queue, its alarms. */

const PACKAGING_TIMEOUT = 300_000;

let template: CloudFormationTemplate;

beforeAll(async () => {
  template = await loadPackagedTemplate('dev');
}, PACKAGING_TIMEOUT);

/** The one element of a list, failing the test otherwise. */
function only<T>(items: T[], what: string): T {
  expect(items, what).toHaveLength(1);
  return items[0]!;
}

function verifierRules(checked: CloudFormationTemplate) {
  const verifier = requireFunction(checked, 'exportVerifier');
  return resourcesOfType(checked, 'AWS::Events::Rule').filter(([, rule]) =>
    ((rule.Properties?.Targets as { Arn: unknown }[] | undefined) ?? []).some((t) => JSON.stringify(t.Arn) === JSON.stringify({ 'Fn::GetAtt': [verifier.logicalId, 'Arn'] })),
  );
}

describe('exportVerifier in the packaged template', () => {
  it('is started by an EventBridge rule for "Object Created" of <prefix>*.tgz in the export bucket, and EventBridge may invoke it', () => {
    const verifier = requireFunction(template, 'exportVerifier');
    const rules = verifierRules(template);
    expect(rules).toHaveLength(1);
    const [, rule] = rules[0]!;
    expect(rule.Properties?.State).toBe('ENABLED');
    expect(rule.Properties?.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: {
        bucket: { name: [verifier.environment.EXPORT_BUCKET] },
        object: { key: [{ wildcard: `${verifier.environment.EXPORT_PREFIX}*.tgz` }] },
      },
    });
    const permissions = resourcesOfType(template, 'AWS::Lambda::Permission').filter(
      ([, p]) => JSON.stringify(p.Properties?.FunctionName) === JSON.stringify({ 'Fn::GetAtt': [verifier.logicalId, 'Arn'] }),
    );
    expect(permissions.map(([, p]) => p.Properties?.Principal)).toEqual(['events.amazonaws.com']);
    expect(permissions[0]![1].Properties?.SourceArn, 'only that rule may invoke it').toEqual({ 'Fn::GetAtt': [rules[0]![0], 'Arn'] });
  });

  it('has the bucket the stack creates send its events to EventBridge', () => {
    const bucketName = requireFunction(template, 'exportVerifier').environment.EXPORT_BUCKET;
    const [, bucket] = only(resourcesOfType(template, 'AWS::S3::Bucket').filter(([, b]) => b.Properties?.BucketName === bucketName), 'the export bucket');
    expect(bucket.Properties?.NotificationConfiguration).toEqual({ EventBridgeConfiguration: { EventBridgeEnabled: true } });
  });

  it('may read and tag objects under the export prefix, write the ledger (the database parameter), start the restore a run asked for and send to the dead-letter queue: nothing more', () => {
    const verifier = requireFunction(template, 'exportVerifier');
    const objects = show({ 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${verifier.environment.EXPORT_BUCKET}/${verifier.environment.EXPORT_PREFIX}*` });
    const parameter = show({ 'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${verifier.environment.DATABASE_URL_PARAMETER}` });
    const logGroup = show({ 'Fn::GetAtt': ['ExportVerifierLogGroup', 'Arn'] });
    expect(permissionsOfRole(template, verifier.roleId!).filter((p) => !p.startsWith('ec2:'))).toEqual([
      `kms:Decrypt on ${show({ 'Fn::Sub': 'arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*' })}`,
      `lambda:InvokeFunction on ${show({ 'Fn::GetAtt': ['RestoreWorkerLambdaFunction', 'Arn'] })}`,
      `logs:CreateLogStream on ${logGroup}`,
      `logs:PutLogEvents on ${logGroup}`,
      `s3:GetObject on ${objects}`,
      `s3:GetObjectVersion on ${objects}`,
      `s3:PutObjectTagging on ${objects}`,
      `s3:PutObjectVersionTagging on ${objects}`,
      `sqs:SendMessage on ${show({ 'Fn::GetAtt': ['JobsDeadLetterQueue', 'Arn'] })}`,
      `ssm:GetParameter on ${parameter}`,
    ]);
  });

  it('is retried, then sent to the failed-runs queue, as the workers are', () => {
    const verifier = requireFunction(template, 'exportVerifier');
    const configs = resourcesOfType(template, 'AWS::Lambda::EventInvokeConfig').filter(
      ([, c]) => (c.Properties?.FunctionName as { Ref?: string }).Ref === verifier.logicalId,
    );
    expect(configs).toHaveLength(1);
    expect(configs[0]![1].Properties).toMatchObject({
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['JobsDeadLetterQueue', 'Arn'] } } },
    });
    expect(verifier.properties.Timeout).toBe(900);
  });

  it('raises an alarm to the alarm topic for a failed verification (the error it logs) and for its own errors', () => {
    const [, filter] = only(resourcesOfType(template, 'AWS::Logs::MetricFilter'), 'one metric filter');
    expect(filter.Properties?.LogGroupName).toEqual({ Ref: 'ExportVerifierLogGroup' });
    // The pattern matches the message the verifier logs (a JSON line from the Powertools logger).
    expect(filter.Properties?.FilterPattern).toBe(`{ ($.level = "ERROR") && ($.message = "${VERIFICATION_FAILED_MESSAGE}") }`);
    const [metric] = filter.Properties?.MetricTransformations as { MetricNamespace: string; MetricName: string }[];
    const alarms = resourcesOfType(template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties!);
    const failed = alarms.find((a) => a.Namespace === metric!.MetricNamespace && a.MetricName === metric!.MetricName);
    expect(failed).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', Statistic: 'Sum', AlarmActions: [{ Ref: 'JobsAlarmTopic' }] });
    const errors = alarms.find(
      (a) => a.MetricName === 'Errors' && JSON.stringify(a.Dimensions) === JSON.stringify([{ Name: 'FunctionName', Value: { Ref: 'ExportVerifierLambdaFunction' } }]),
    );
    expect(errors).toMatchObject({ Threshold: 0, AlarmActions: [{ Ref: 'JobsAlarmTopic' }] });
  });

  it('works with an existing bucket: the same rule and role name it, and the stack leaves the bucket alone', async () => {
    const existing = await loadPackagedTemplate('dev', { CREATE_EXPORT_BUCKET: 'false', EXPORT_BUCKET: 'operators-existing-bucket' });
    const [, bucket] = only(resourcesOfType(existing, 'AWS::S3::Bucket').filter(([, b]) => b.Properties?.BucketName === 'operators-existing-bucket'), 'the bucket');
    expect(conditionHolds(existing, bucket.Condition!), 'the stack does not create it').toBe(false);
    const [, rule] = only(verifierRules(existing), 'one rule');
    expect((rule.Properties?.EventPattern as { detail: { bucket: unknown } }).detail.bucket).toEqual({ name: ['operators-existing-bucket'] });
    const verifier = requireFunction(existing, 'exportVerifier');
    expect(permissionsOfRole(existing, verifier.roleId!).filter((p) => p.startsWith('s3:GetObject '))).toEqual([
      `s3:GetObject on ${show({ 'Fn::Sub': 'arn:${AWS::Partition}:s3:::operators-existing-bucket/export/*' })}`,
    ]);
  }, PACKAGING_TIMEOUT);
});
