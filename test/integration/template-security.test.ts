import { beforeAll, describe, expect, it } from 'vitest';
import type { CloudFormationTemplate } from '../support/packaged-template';
import { loadPackagedTemplate, resourcesOfType } from '../support/packaged-template';
import {
  conditionHolds,
  describe as show,
  iamStatements,
  lambdaFunctions,
  methodPath,
  permissionsOfRole,
  requireFunction,
  stringsIn,
} from '../support/template-inspection';

/**
 * The deployed stack, as `sls package` builds it offline for the dev stage: authentication on every
 * route, least privilege per function, no secret in plain text, a hardened export bucket.
 */

const PACKAGING_TIMEOUT = 300_000;

/**
 * The one place '*' may be a Resource: the network-interface actions Lambda needs in a VPC, which
 * AWS does not let a policy narrow to resources (see the comment in serverless.yml).
 */
const ACTIONS_ALLOWED_ON_ANY_RESOURCE = [
  'ec2:AssignPrivateIpAddresses',
  'ec2:CreateNetworkInterface',
  'ec2:DeleteNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:UnassignPrivateIpAddresses',
];

/**
 * Who may invoke whom, and the setting that names each target: an API its worker; a coordinator its
 * schema worker; whatever may close an export run (its last step, the coordinator running steps
 * inline, the verifier of its last tarball) the restore's coordinator, for a run that asked for one.
 */
const INVOKERS: Record<string, [worker: string, variable: string][]> = {
  exportApi: [['exportWorker', 'EXPORT_WORKER_FUNCTION']],
  timeLimitedApi: [['timeLimitedWorker', 'TIME_LIMITED_WORKER_FUNCTION']],
  restoreApi: [['restoreWorker', 'RESTORE_WORKER_FUNCTION']],
  exportWorker: [
    ['exportSchemaWorker', 'EXPORT_SCHEMA_WORKER_FUNCTION'],
    ['restoreWorker', 'RESTORE_WORKER_FUNCTION'],
  ],
  exportSchemaWorker: [['restoreWorker', 'RESTORE_WORKER_FUNCTION']],
  exportVerifier: [['restoreWorker', 'RESTORE_WORKER_FUNCTION']],
  restoreWorker: [['restoreSchemaWorker', 'RESTORE_SCHEMA_WORKER_FUNCTION']],
};
const WORKERS = ['exportWorker', 'exportSchemaWorker', 'timeLimitedWorker', 'restoreWorker', 'restoreSchemaWorker'] as const;
const RESTORE_FUNCTIONS = ['restoreWorker', 'restoreSchemaWorker'];
const ALL_FUNCTIONS = ['exportApi', 'exportWorker', 'exportSchemaWorker', 'timeLimitedApi', 'timeLimitedWorker', 'restoreApi', ...RESTORE_FUNCTIONS, 'getRun', 'listRuns', 'cancelRun', 'pauseSchedule', 'dashboard', 'exportVerifier'];
/** The dashboard page: fixed files, no data, so no key and no database. */
const OPEN_ROUTES = ['GET /jobs/dashboard'];
const FUNCTIONS_WITHOUT_DATABASE = ['dashboard'];
/** Invoked asynchronously (by the API, a schedule or an event), so they send failures to the queue. */
const ASYNC_FUNCTIONS = [...WORKERS, 'exportVerifier'];

let template: CloudFormationTemplate;

beforeAll(async () => {
  template = await loadPackagedTemplate('dev');
}, PACKAGING_TIMEOUT);

describe('authentication at API Gateway', () => {
  it('requires an API key (or IAM) on every /jobs route but /jobs/dashboard, the only open one; the routes are the eight expected', () => {
    const methods = resourcesOfType(template, 'AWS::ApiGateway::Method');
    const routes = methods.map(([id, method]) => `${String(method.Properties?.HttpMethod)} ${methodPath(template, id)}`);
    expect(routes.sort()).toEqual([
      'ANY /jobs/export',
      'ANY /jobs/restore',
      'ANY /jobs/runs/{id}/cancel',
      'ANY /jobs/time-limited',
      'ANY /jobs/{job}/schedule',
      'GET /jobs/dashboard',
      'GET /jobs/runs/{id}',
      'GET /jobs/{job}/runs',
    ]);

    const open: string[] = [];
    for (const [id, method] of methods) {
      const { ApiKeyRequired, AuthorizationType } = method.Properties ?? {};
      const route = `${String(method.Properties?.HttpMethod)} ${methodPath(template, id)}`;
      if (ApiKeyRequired !== true && AuthorizationType !== 'AWS_IAM') open.push(route);
      if (OPEN_ROUTES.includes(route)) continue;
      expect(
        ApiKeyRequired === true || AuthorizationType === 'AWS_IAM',
        `${id} (${methodPath(template, id)}) is open: ApiKeyRequired=${String(ApiKeyRequired)}, AuthorizationType=${String(AuthorizationType)}`,
      ).toBe(true);
    }
    expect(open, 'the routes without the API key').toEqual(OPEN_ROUTES);
  });

  it('serves the open route from a function that holds no data: no database, no invoke, no S3', () => {
    const dashboard = requireFunction(template, 'dashboard');
    const permissions = permissionsOfRole(template, dashboard.roleId!).filter((p) => !/^(logs|ec2):/.test(p));
    expect(permissions).toEqual([]);
  });

  it('has two API keys (the scheduler\'s, the operators\'), whose values API Gateway generates, each in a usage plan with throttling and a quota', () => {
    const keys = resourcesOfType(template, 'AWS::ApiGateway::ApiKey');
    expect(keys.map(([, key]) => key.Properties?.Name).sort()).toEqual(['water-abstraction-jobs-dev-caller', 'water-abstraction-jobs-dev-operators']);
    for (const [, key] of keys) {
      expect(key.Properties?.Value, 'the API key value must not be written in the template').toBeUndefined();
      expect(key.Properties?.Enabled).toBe(true);
    }

    const plans = resourcesOfType(template, 'AWS::ApiGateway::UsagePlan');
    expect(plans).toHaveLength(1);
    const [planId, plan] = plans[0]!;
    const throttle = plan.Properties?.Throttle as { RateLimit?: number; BurstLimit?: number } | undefined;
    expect(throttle?.RateLimit).toBeGreaterThan(0);
    expect(throttle?.BurstLimit).toBeGreaterThan(0);
    expect((plan.Properties?.Quota as { Limit?: number } | undefined)?.Limit).toBeGreaterThan(0);
    expect(plan.Properties?.ApiStages).toEqual([{ ApiId: { Ref: 'ApiGatewayRestApi' }, Stage: 'dev' }]);

    const planKeys = resourcesOfType(template, 'AWS::ApiGateway::UsagePlanKey').map(([, k]) => k.Properties);
    expect(planKeys).toEqual(keys.map(([keyId]) => ({ KeyId: { Ref: keyId }, KeyType: 'API_KEY', UsagePlanId: { Ref: planId } })));
  });
});

describe('IAM: one least-privilege role per function', () => {
  it('gives every function a role of its own, defined in the template, that only Lambda may assume', () => {
    const functions = [...lambdaFunctions(template).values()];
    expect(functions.map((f) => f.key).sort()).toEqual([...ALL_FUNCTIONS].sort());
    expect(template.Resources.IamRoleLambdaExecution, 'no shared Serverless default role').toBeUndefined();

    const roles = functions.map((f) => f.roleId);
    for (const fn of functions) {
      expect(fn.roleId, `${fn.key} has no Role: { Fn::GetAtt: [<role>, Arn] }`).toBeDefined();
      expect(template.Resources[fn.roleId!]?.Type, `${fn.key}'s role`).toBe('AWS::IAM::Role');
      const trust = template.Resources[fn.roleId!]!.Properties?.AssumeRolePolicyDocument;
      expect(trust, `${fn.key}'s role trust policy`).toEqual({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      });
      expect(template.Resources[fn.roleId!]!.Properties?.ManagedPolicyArns, `${fn.key}'s role has managed policies`).toBeUndefined();
    }
    expect(new Set(roles).size, `roles shared between functions: ${roles.join(', ')}`).toBe(functions.length);
  });

  it('has no Action "*" or "<service>:*", no NotAction/NotResource, and Resource "*" only for the VPC network interfaces', () => {
    const statements = iamStatements(template);
    expect(statements.length).toBeGreaterThan(0);
    for (const statement of statements) {
      expect(statement.raw.NotAction, `${statement.origin} uses NotAction`).toBeUndefined();
      expect(statement.raw.NotResource, `${statement.origin} uses NotResource`).toBeUndefined();
      for (const action of statement.actions) {
        expect(action, `${statement.origin} has a wildcard action`).not.toMatch(/\*/);
      }
      if (statement.resources.includes('*')) {
        expect(statement.resources, `${statement.origin}: '*' mixed with other resources`).toEqual(['*']);
        expect([...statement.actions].sort(), `${statement.origin} allows more than the VPC network-interface actions on '*'`).toEqual(
          ACTIONS_ALLOWED_ON_ANY_RESOURCE,
        );
      }
    }
  });

  it('lets each function write logs only to its own log group', () => {
    for (const fn of lambdaFunctions(template).values()) {
      const logs = permissionsOfRole(template, fn.roleId!).filter((p) => p.startsWith('logs:'));
      const logGroupId = `${fn.logicalId.replace(/LambdaFunction$/, '')}LogGroup`;
      expect(template.Resources[logGroupId]?.Properties?.LogGroupName).toBe(`/aws/lambda/${String(fn.properties.FunctionName)}`);
      const own = show({ 'Fn::GetAtt': [logGroupId, 'Arn'] });
      expect(logs, fn.key).toEqual([`logs:CreateLogStream on ${own}`, `logs:PutLogEvents on ${own}`]);
    }
  });

  it('lets an API function invoke its own worker, a coordinator its schema worker, what closes an export run the restore, and nothing else', () => {
    for (const fn of lambdaFunctions(template).values()) {
      const invokes = permissionsOfRole(template, fn.roleId!).filter((p) => p.startsWith('lambda:'));
      const invoked = INVOKERS[fn.key] ?? [];
      const expected = invoked.map(([worker]) => `lambda:InvokeFunction on ${show({ 'Fn::GetAtt': [requireFunction(template, worker).logicalId, 'Arn'] })}`);
      expect(invokes, `what ${fn.key} may invoke`).toEqual(expected.sort());
      // The name each dispatches to is that same function.
      for (const [worker, variable] of invoked) expect(fn.environment[variable], `${fn.key}: ${variable}`).toBe(requireFunction(template, worker).properties.FunctionName);
    }
  });

  it('lets only the export schema worker, the verifier and the restore touch S3: put and abort; read and tag; read with tags; under the export prefix of its bucket', () => {
    const exportWorker = requireFunction(template, 'exportSchemaWorker');
    const bucket = exportWorker.environment.EXPORT_BUCKET;
    const prefix = exportWorker.environment.EXPORT_PREFIX;
    expect(bucket).toMatch(/^[a-z0-9][a-z0-9.-]+$/);
    expect(prefix, 'an empty prefix would open the whole bucket').toMatch(/^[^*?]+\/$/);
    const exportObjects = show({ 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${bucket}/${prefix}*` });

    for (const fn of lambdaFunctions(template).values()) {
      const s3 = permissionsOfRole(template, fn.roleId!).filter((p) => p.startsWith('s3:'));
      if (fn.key === 'exportSchemaWorker') {
        expect(s3).toEqual([`s3:AbortMultipartUpload on ${exportObjects}`, `s3:PutObject on ${exportObjects}`]);
      } else if (fn.key === 'exportVerifier') {
        const actions = ['GetObject', 'GetObjectVersion', 'PutObjectTagging', 'PutObjectVersionTagging'];
        expect(s3).toEqual(actions.map((action) => `s3:${action} on ${exportObjects}`));
      } else if (RESTORE_FUNCTIONS.includes(fn.key)) {
        const actions = ['GetObject', 'GetObjectTagging', 'GetObjectVersion', 'GetObjectVersionTagging'];
        expect(s3, fn.key).toEqual(actions.map((action) => `s3:${action} on ${exportObjects}`));
      } else {
        expect(s3, `${fn.key} may use S3`).toEqual([]);
      }
    }
  });

  it('lets every function but the dashboard read the database parameter, the restore functions alone the target\'s too (decrypting only through SSM), and nothing else of SSM or KMS', () => {
    for (const fn of lambdaFunctions(template).values()) {
      const parameterName = fn.environment.DATABASE_URL_PARAMETER;
      const targetName = fn.environment.RESTORE_DATABASE_URL_PARAMETER;
      const permissions = permissionsOfRole(template, fn.roleId!).filter((p) => /^(ssm|kms|secretsmanager):/.test(p));
      if (FUNCTIONS_WITHOUT_DATABASE.includes(fn.key)) {
        expect(permissions, fn.key).toEqual([]);
        // Each function holds only the settings it reads: no database, no parameter name.
        expect(parameterName, fn.key).toBeUndefined();
        continue;
      }
      expect(parameterName, `${fn.key}: DATABASE_URL_PARAMETER`).toMatch(/^\/[\w./-]+$/);
      const names = [parameterName!];
      if (RESTORE_FUNCTIONS.includes(fn.key)) {
        expect(targetName, `${fn.key}: RESTORE_DATABASE_URL_PARAMETER`).toMatch(/^\/[\w./-]+$/);
        expect(targetName).not.toBe(parameterName);
        names.push(targetName!);
      } else {
        expect(targetName, `${fn.key} holds the target's parameter name`).toBeUndefined();
      }
      const arns = names.map((name) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${name}` }));
      const key = `kms:Decrypt on ${show({ 'Fn::Sub': 'arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*' })}`;
      expect(permissions, fn.key).toEqual([...names.map(() => key), ...arns.map((arn) => `ssm:GetParameter on ${show(arn)}`)].sort());
      // Each key use is for one of its parameters, through SSM only.
      const decrypts = iamStatements(template).filter((s) => s.role === fn.roleId && s.actions.includes('kms:Decrypt'));
      expect(decrypts.map((d) => d.raw.Condition), `${fn.key}: kms:Decrypt without its conditions`).toEqual(
        arns.map((arn) => ({ StringEquals: { 'kms:ViaService': { 'Fn::Sub': 'ssm.${AWS::Region}.amazonaws.com' }, 'kms:EncryptionContext:PARAMETER_ARN': arn } })),
      );
    }
  });

  it('lets the workers (only) send to the failed-runs queue, and grants each role exactly its list of permissions', () => {
    const queueArn = show({ 'Fn::GetAtt': ['JobsDeadLetterQueue', 'Arn'] });
    for (const fn of lambdaFunctions(template).values()) {
      const sqs = permissionsOfRole(template, fn.roleId!).filter((p) => p.startsWith('sqs:'));
      expect(sqs, fn.key).toEqual(ASYNC_FUNCTIONS.includes(fn.key) ? [`sqs:SendMessage on ${queueArn}`] : []);

      // Whatever the checks above did not name is a permission nobody asked for.
      const known = /^(logs:(CreateLogStream|PutLogEvents)|ec2:|ssm:GetParameter |kms:Decrypt |lambda:InvokeFunction |s3:(PutObject|AbortMultipartUpload|GetObject|GetObjectVersion|GetObjectTagging|GetObjectVersionTagging|PutObjectTagging|PutObjectVersionTagging) |sqs:SendMessage )/;
      expect(permissionsOfRole(template, fn.roleId!).filter((p) => !known.test(p)), `${fn.key} has unexpected permissions`).toEqual([]);
    }
  });

  it('runs every function in the VPC given by the stage parameters', () => {
    for (const fn of lambdaFunctions(template).values()) {
      const vpc = fn.properties.VpcConfig as { SubnetIds?: unknown; SecurityGroupIds?: unknown[] } | undefined;
      expect(vpc?.SubnetIds, `${fn.key} is not in a VPC`).toBeDefined();
      expect(vpc?.SecurityGroupIds, fn.key).toHaveLength(1);
    }
  });

  it('lets the time-limited schedule invoke its worker and nothing else', () => {
    const [schedule] = resourcesOfType(template, 'AWS::Scheduler::Schedule');
    const target = schedule?.[1].Properties?.Target as { Arn: unknown; RoleArn: { 'Fn::GetAtt': [string, string] } };
    expect(target.Arn).toEqual({ 'Fn::GetAtt': ['TimeLimitedWorkerLambdaFunction', 'Arn'] });
    const roleId = target.RoleArn['Fn::GetAtt'][0];
    expect(template.Resources[roleId]?.Properties?.AssumeRolePolicyDocument).toMatchObject({
      Statement: [{ Effect: 'Allow', Principal: { Service: 'scheduler.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    });
    expect(permissionsOfRole(template, roleId)).toEqual([
      `lambda:InvokeFunction on ${show({ 'Fn::GetAtt': ['TimeLimitedWorkerLambdaFunction', 'Arn'] })}`,
    ]);
  });
});

/** Names and values that are secrets, or carry one, wherever they appear. */
const SECRET_NAMES = /^(DATABASE_URL|PGPASSWORD|.*PASSWORD.*|.*SECRET.*|.*PRIVATE_KEY.*|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|JOBS_API_KEY)$/i;
const SECRET_VALUES = [
  /postgres(ql)?:\/\//i,
  /password\s*=/i,
  /\b(AKIA|ASIA)[0-9A-Z]{16}\b/,
  /[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i, // credentials in a URL
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
];

function expectNoSecretsIn(checked: CloudFormationTemplate) {
  for (const fn of lambdaFunctions(checked).values()) {
    for (const [name, value] of Object.entries(fn.environment)) {
      expect(name, `${fn.key}: environment variable ${name} is a secret's name`).not.toMatch(SECRET_NAMES);
      for (const pattern of SECRET_VALUES) {
        expect(value, `${fn.key}: ${name} looks like a secret`).not.toMatch(pattern);
      }
    }
  }
  for (const [path, value] of stringsIn(checked.Resources)) {
    for (const pattern of SECRET_VALUES) expect(value, `${path} looks like a secret`).not.toMatch(pattern);
  }
}

describe('secrets', () => {
  it("keeps the framework's deployment bucket (the functions' code, the templates) private, encrypted and reachable only over TLS", () => {
    const bucket = template.Resources.ServerlessDeploymentBucket!;
    expect(bucket.Type).toBe('AWS::S3::Bucket');
    expect(bucket.Properties?.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.Properties?.BucketEncryption).toEqual({ ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] });
    const policy = template.Resources.ServerlessDeploymentBucketPolicy?.Properties?.PolicyDocument as { Statement: unknown[] };
    expect(policy.Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Principal: '*', Condition: { Bool: { 'aws:SecureTransport': false } } }),
    );
  });

  it('gives each function only the settings it reads', () => {
    const names = (key: string) => Object.keys(requireFunction(template, key).environment).sort();
    expect(names('dashboard')).toEqual(['LOG_LEVEL']);
    expect(names('timeLimitedApi')).toEqual(['DATABASE_URL_PARAMETER', 'JOB_DISPATCH', 'LAMBDA_ENDPOINT', 'LOG_LEVEL', 'TIME_LIMITED_WORKER_FUNCTION']);
    expect(names('exportApi')).toEqual(['DATABASE_URL_PARAMETER', 'EXPORT_SCHEMAS', 'EXPORT_WORKER_FUNCTION', 'JOB_DISPATCH', 'LAMBDA_ENDPOINT', 'LOG_LEVEL']);
    expect(names('timeLimitedWorker')).toEqual(['DATABASE_URL_PARAMETER', 'JOBS_TIME_ZONE', 'LOG_LEVEL', 'TIME_LIMITED_DAYS']);
    expect(names('exportSchemaWorker')).not.toContain('EXPORT_SCHEMA_WORKER_FUNCTION');
    expect(names('restoreApi')).toEqual(['DATABASE_URL_PARAMETER', 'EXPORT_SCHEMAS', 'JOB_DISPATCH', 'LAMBDA_ENDPOINT', 'LOG_LEVEL', 'RESTORE_WORKER_FUNCTION']);
    expect(names('restoreSchemaWorker')).not.toContain('RESTORE_SCHEMA_WORKER_FUNCTION');
  });

  it('puts no secret in any function environment (or anywhere in the template)', () => {
    expectNoSecretsIn(template);
  });

  it("keeps the deployer's shell secrets out of the template", async () => {
    const leaky = await loadPackagedTemplate('dev', {
      DATABASE_URL: 'postgres://jobs:hunter2-password@db.internal:5432/water',
      PGPASSWORD: 'hunter2-password',
      JOBS_API_KEY: 'a-key-that-must-stay-in-the-shell-0123456789',
    });
    expectNoSecretsIn(leaky);
    const text = JSON.stringify(leaky);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('a-key-that-must-stay-in-the-shell');
  }, PACKAGING_TIMEOUT);
});

describe('the export bucket', () => {
  function exportBucket() {
    const bucketName = requireFunction(template, 'exportWorker').environment.EXPORT_BUCKET;
    const buckets = resourcesOfType(template, 'AWS::S3::Bucket').filter(([, b]) => b.Properties?.BucketName === bucketName);
    expect(buckets, `the stack creates ${bucketName}`).toHaveLength(1);
    const [id, bucket] = buckets[0]!;
    if (bucket.Condition) expect(conditionHolds(template, bucket.Condition), `${bucket.Condition} holds for dev`).toBe(true);
    return { id, bucket, properties: bucket.Properties ?? {} };
  }

  it('is encrypted by default', () => {
    const { properties } = exportBucket();
    const rules = (properties.BucketEncryption as { ServerSideEncryptionConfiguration?: { ServerSideEncryptionByDefault?: { SSEAlgorithm?: string } }[] })
      ?.ServerSideEncryptionConfiguration;
    expect(rules?.length).toBeGreaterThan(0);
    for (const rule of rules ?? []) expect(['AES256', 'aws:kms', 'aws:kms:dsse']).toContain(rule.ServerSideEncryptionByDefault?.SSEAlgorithm);
  });

  it('blocks all public access', () => {
    expect(exportBucket().properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
  });

  it('is versioned, and aborts incomplete multipart uploads after a day', () => {
    const { properties } = exportBucket();
    expect(properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    const rules = (properties.LifecycleConfiguration as { Rules?: Record<string, unknown>[] } | undefined)?.Rules ?? [];
    const abort = rules.find((r) => r.AbortIncompleteMultipartUpload);
    expect(abort).toMatchObject({ Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } });
    expect(abort?.Prefix ?? abort?.Filter, 'the abort rule applies to the whole bucket').toBeUndefined();
  });

  it('has a policy that refuses every request not made over TLS', () => {
    const { id, bucket } = exportBucket();
    const policies = resourcesOfType(template, 'AWS::S3::BucketPolicy').filter(([, p]) => (p.Properties?.Bucket as { Ref?: string })?.Ref === id);
    expect(policies).toHaveLength(1);
    const [, policy] = policies[0]!;
    expect(policy.Condition).toBe(bucket.Condition);
    const statements = (policy.Properties?.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement;
    const denyPlainHttp = statements.find(
      (s) =>
        s.Effect === 'Deny' &&
        s.Principal === '*' &&
        (s.Action === 's3:*' || (Array.isArray(s.Action) && s.Action.includes('s3:*'))) &&
        String((s.Condition as { Bool?: Record<string, unknown> } | undefined)?.Bool?.['aws:SecureTransport']) === 'false',
    );
    expect(denyPlainHttp, 'no Deny of s3:* when aws:SecureTransport is false').toBeDefined();
    expect(denyPlainHttp!.Resource).toEqual([{ 'Fn::GetAtt': [id, 'Arn'] }, { 'Fn::Sub': `\${${id}.Arn}/*` }]);
    // Nothing in the bucket policy grants access: the worker's role does.
    expect(statements.filter((s) => s.Effect !== 'Deny')).toEqual([]);
  });
});
