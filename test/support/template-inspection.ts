import type { CloudFormationTemplate } from './packaged-template';
import { resourcesOfType } from './packaged-template';

/** One Allow or Deny statement of an IAM policy, with Action and Resource always as lists. */
export interface PolicyStatement {
  /** Where it came from, for messages: `<logical id>/<policy name>#<index>`. */
  origin: string;
  /** The role it belongs to, if it is inline in an AWS::IAM::Role. */
  role?: string;
  effect: string;
  actions: string[];
  resources: unknown[];
  raw: Record<string, unknown>;
}

function asList(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function statementsOf(document: unknown, origin: string, role?: string): PolicyStatement[] {
  const statements = asList((document as { Statement?: unknown } | undefined)?.Statement) as Record<string, unknown>[];
  return statements.map((raw, index) => ({
    origin: `${origin}#${index}`,
    role,
    effect: String(raw.Effect),
    actions: asList(raw.Action).map(String),
    resources: asList(raw.Resource),
    raw,
  }));
}

/**
 * Every permission statement of every IAM role and policy in the template (inline role policies,
 * AWS::IAM::Policy and AWS::IAM::ManagedPolicy), not the trust policies.
 */
export function iamStatements(template: CloudFormationTemplate): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  for (const [id, role] of resourcesOfType(template, 'AWS::IAM::Role')) {
    const policies = asList(role.Properties?.Policies) as { PolicyName: string; PolicyDocument: unknown }[];
    for (const policy of policies) {
      statements.push(...statementsOf(policy.PolicyDocument, `${id}/${policy.PolicyName}`, id));
    }
  }
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const [id, policy] of resourcesOfType(template, type)) {
      const roles = asList(policy.Properties?.Roles).map((r) => (r as { Ref?: string }).Ref);
      statements.push(...statementsOf(policy.Properties?.PolicyDocument, id, roles.length === 1 ? roles[0] : undefined));
    }
  }
  return statements;
}

/** The statements that apply to one role (inline or attached by an AWS::IAM::Policy naming it alone). */
export function statementsOfRole(template: CloudFormationTemplate, roleId: string): PolicyStatement[] {
  return iamStatements(template).filter((s) => s.role === roleId);
}

/**
 * A role's Allow statements flattened to "action on resource" lines, sorted, with intrinsic
 * functions written as JSON: the whole of what the role may do, for an exact comparison.
 */
export function permissionsOfRole(template: CloudFormationTemplate, roleId: string): string[] {
  return statementsOfRole(template, roleId)
    .filter((s) => s.effect === 'Allow')
    .flatMap((s) => s.actions.flatMap((action) => s.resources.map((resource) => `${action} on ${describe(resource)}`)))
    .sort();
}

export function describe(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export interface LambdaFunction {
  /** Key in serverless.yml, e.g. `exportWorker`. */
  key: string;
  logicalId: string;
  properties: Record<string, unknown>;
  environment: Record<string, string>;
  /** Logical id of the role in Role: { Fn::GetAtt: [id, Arn] }, or undefined if not so. */
  roleId?: string;
}

/** The AWS::Lambda::Function resources, keyed by their serverless.yml name. */
export function lambdaFunctions(template: CloudFormationTemplate): Map<string, LambdaFunction> {
  const functions = new Map<string, LambdaFunction>();
  for (const [logicalId, resource] of resourcesOfType(template, 'AWS::Lambda::Function')) {
    const properties = resource.Properties ?? {};
    const name = String(properties.FunctionName);
    const key = name.slice(name.lastIndexOf('-') + 1);
    const role = properties.Role as { 'Fn::GetAtt'?: [string, string] } | undefined;
    const getAtt = role?.['Fn::GetAtt'];
    functions.set(key, {
      key,
      logicalId,
      properties,
      environment: ((properties.Environment as { Variables?: Record<string, string> } | undefined)?.Variables ?? {}),
      roleId: getAtt && getAtt[1] === 'Arn' ? getAtt[0] : undefined,
    });
  }
  return functions;
}

export function requireFunction(template: CloudFormationTemplate, key: string): LambdaFunction {
  const fn = lambdaFunctions(template).get(key);
  if (!fn) throw new Error(`The template has no function ${key}`);
  return fn;
}

/** The path of an API Gateway method, from its resource's chain of PathParts. */
export function methodPath(template: CloudFormationTemplate, methodId: string): string {
  const parts: string[] = [];
  let resourceRef = (template.Resources[methodId]?.Properties?.ResourceId as { Ref?: string } | undefined)?.Ref;
  while (resourceRef) {
    const resource = template.Resources[resourceRef];
    if (!resource) throw new Error(`${methodId}: unknown resource ${resourceRef}`);
    parts.unshift(String(resource.Properties?.PathPart));
    resourceRef = (resource.Properties?.ParentId as { Ref?: string } | undefined)?.Ref;
  }
  return `/${parts.join('/')}`;
}

/**
 * Whether a template Condition holds, for the forms serverless.yml uses (Fn::Equals of two
 * literals, Fn::Not); anything else throws, so a test never guesses.
 */
export function conditionHolds(template: CloudFormationTemplate, name: string): boolean {
  const evaluate = (expression: unknown): boolean => {
    const e = expression as Record<string, unknown[]>;
    if (e['Fn::Equals']) {
      const [a, b] = e['Fn::Equals'];
      if (typeof a !== 'string' || typeof b !== 'string') throw new Error(`Condition ${name} compares non-literals`);
      return a === b;
    }
    if (e['Fn::Not']) return !evaluate(e['Fn::Not'][0]);
    if ((e as { Condition?: string }).Condition) return conditionHolds(template, String((e as { Condition?: string }).Condition));
    throw new Error(`Condition ${name}: unsupported ${JSON.stringify(expression)}`);
  };
  const expression = template.Conditions?.[name];
  if (expression === undefined) throw new Error(`The template has no condition ${name}`);
  return evaluate(expression);
}

/** Every string anywhere in a JSON value, with its path. */
export function* stringsIn(value: unknown, path = ''): Generator<[string, string]> {
  if (typeof value === 'string') yield [path, value];
  else if (Array.isArray(value)) for (const [i, item] of value.entries()) yield* stringsIn(item, `${path}[${i}]`);
  else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) yield* stringsIn(item, path ? `${path}.${key}` : key);
  }
}

/** The properties of a function's one asynchronous-invoke config (retries, event age, destinations); throws unless exactly one. */
export function eventInvokeConfigOf(template: CloudFormationTemplate, functionLogicalId: string): Record<string, unknown> {
  const configs = resourcesOfType(template, 'AWS::Lambda::EventInvokeConfig').filter(
    ([, c]) => (c.Properties?.FunctionName as { Ref?: string }).Ref === functionLogicalId,
  );
  if (configs.length !== 1) throw new Error(`${functionLogicalId} has ${configs.length} EventInvokeConfigs, not one`);
  return configs[0]![1].Properties!;
}
