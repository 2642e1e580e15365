import { describe, expect, it } from 'vitest';
import type { CloudFormationTemplate } from '../support/packaged-template';
import { loadPackagedTemplate, resourcesOfType } from '../support/packaged-template';
import { conditionHolds, lambdaFunctions } from '../support/template-inspection';

/**
 * `sls package --stage prod` works offline, with documented placeholders for what only the
 * operators know, and the stages differ only by parameters: the same resources, other values.
 */

const PACKAGING_TIMEOUT = 300_000;

/** What an operator exports before `sls deploy --stage prod` (see the README). */
const OPERATOR_ENV = {
  JOBS_SUBNET_IDS: 'subnet-0123456789abcdef0,subnet-0fedcba9876543210',
  JOBS_SECURITY_GROUP_ID: 'sg-0123456789abcdef0',
  ALARM_EMAIL: 'water-jobs-alarms@example.gov.uk',
  DATABASE_URL_PARAMETER: '/wrls/prod/jobs/database-url',
  RESTORE_DATABASE_URL_PARAMETER: '/wrls/prod/reporting/database-url',
};

/** Logical ids without the hashes serverless adds to versions and deployments. */
function shape(template: CloudFormationTemplate): string[] {
  return Object.entries(template.Resources)
    .map(([id, r]) => `${id.replace(/(LambdaVersion|ApiGatewayDeployment)\w+$/, '$1')} ${r.Type}`)
    .sort();
}

function vpcOf(template: CloudFormationTemplate) {
  return [...lambdaFunctions(template).values()].map((fn) => fn.properties.VpcConfig);
}

describe('stages', () => {
  it('packages prod offline with the documented placeholders', async () => {
    const prod = await loadPackagedTemplate('prod');
    const functions = [...lambdaFunctions(prod).values()];
    expect(functions).toHaveLength(14);
    for (const fn of functions) expect(String(fn.properties.FunctionName)).toMatch(/^water-abstraction-jobs-prod-/);
    if (!process.env.JOBS_SUBNET_IDS && !process.env.JOBS_SECURITY_GROUP_ID) {
      for (const vpc of vpcOf(prod)) {
        expect(vpc).toEqual({
          SecurityGroupIds: ['sg-set-JOBS_SECURITY_GROUP_ID'],
          SubnetIds: { 'Fn::Split': [',', 'subnet-set-JOBS_SUBNET_IDS-a,subnet-set-JOBS_SUBNET_IDS-b'] },
        });
      }
    }
  }, PACKAGING_TIMEOUT);

  it("takes the operators' values from the environment", async () => {
    const prod = await loadPackagedTemplate('prod', OPERATOR_ENV);
    for (const fn of lambdaFunctions(prod).values()) {
      expect(fn.properties.VpcConfig).toEqual({
        SecurityGroupIds: [OPERATOR_ENV.JOBS_SECURITY_GROUP_ID],
        SubnetIds: { 'Fn::Split': [',', OPERATOR_ENV.JOBS_SUBNET_IDS] },
      });
      // The dashboard serves fixed files: it has no database setting at all.
      expect(fn.environment.DATABASE_URL_PARAMETER, fn.key).toBe(fn.key === 'dashboard' ? undefined : OPERATOR_ENV.DATABASE_URL_PARAMETER);
      // The target of the restore: only the restore's workers hold its name.
      expect(fn.environment.RESTORE_DATABASE_URL_PARAMETER, fn.key).toBe(/^restore(Schema)?Worker$/.test(fn.key) ? OPERATOR_ENV.RESTORE_DATABASE_URL_PARAMETER : undefined);
    }
    const subscriptions = resourcesOfType(prod, 'AWS::SNS::Subscription');
    expect(subscriptions).toHaveLength(1);
    const [, subscription] = subscriptions[0]!;
    expect(subscription.Properties?.Endpoint).toBe(OPERATOR_ENV.ALARM_EMAIL);
    expect(conditionHolds(prod, subscription.Condition!)).toBe(true);
  }, PACKAGING_TIMEOUT);

  it('builds the same resources for dev and prod, with stage-specific names', async () => {
    const [dev, prod] = await Promise.all([loadPackagedTemplate('dev'), loadPackagedTemplate('prod')]);
    expect(shape(prod)).toEqual(shape(dev));
    expect(JSON.stringify(prod)).not.toMatch(/-dev-|\/dev\//);
  }, PACKAGING_TIMEOUT);
});
