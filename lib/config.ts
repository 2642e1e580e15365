/**
 * Settings from the environment, read once at cold start. A missing or contradictory setting
 * throws a ConfigError that names it, so a misconfigured function fails before it answers anything.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export type Env = Record<string, string | undefined>;

/**
 * Where this process runs, from the variables the tools set: `serverless offline` sets IS_OFFLINE,
 * `serverless invoke local` sets IS_LOCAL=true, and Lambda sets AWS_LAMBDA_FUNCTION_NAME (which the
 * two emulators set as well, so it alone does not mean AWS).
 */
export function runsOffline(env: Env): boolean {
  return Boolean(env.IS_OFFLINE);
}

export function runsUnderInvokeLocal(env: Env): boolean {
  return env.IS_LOCAL === 'true';
}

export function runsInAws(env: Env): boolean {
  return Boolean(env.AWS_LAMBDA_FUNCTION_NAME) && !runsOffline(env) && !runsUnderInvokeLocal(env);
}

/** The service's schemas, in the order the export takes them: the one list (tests and the sample database read it too). */
export const DEFAULT_EXPORT_SCHEMAS = ['water', 'returns', 'crm', 'crm_v2', 'idm', 'permit'] as const;

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function required(env: Env, name: string, why: string): string {
  const value = optional(env, name);
  if (!value) throw new ConfigError(`${name} is not set: ${why}`);
  return value;
}

function url(env: Env, name: string): string | undefined {
  const value = optional(env, name);
  if (value === undefined) return undefined;
  try {
    new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a valid URL: ${JSON.stringify(value)}`);
  }
  return value;
}

export interface DatabaseSettings {
  /** A connection string given directly (local use); takes precedence over urlParameter. */
  url?: string;
  /** Name of an SSM SecureString parameter holding the connection string (AWS). */
  urlParameter?: string;
}

export function readDatabaseSettings(env: Env): DatabaseSettings {
  const databaseUrl = optional(env, 'DATABASE_URL');
  const urlParameter = optional(env, 'DATABASE_URL_PARAMETER');
  if (!databaseUrl && !urlParameter) {
    throw new ConfigError(
      'DATABASE_URL is not set: give a PostgreSQL connection string, or DATABASE_URL_PARAMETER naming an SSM SecureString that holds one',
    );
  }
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must start with postgres:// or postgresql://');
  }
  // A connection string in the environment (local use) wins over the deployed SSM parameter.
  return databaseUrl ? { url: databaseUrl } : { urlParameter };
}

export interface ExportSettings {
  bucket: string;
  prefix: string;
  schemas: string[];
  /** How many schema steps run at once (EXPORT_CONCURRENCY; default: one per schema). */
  concurrency: number;
  s3Endpoint?: string;
  /** Tables of a schema read at once (EXPORT_TABLE_PARALLELISM); unset: the CPUs. */
  tableParallelism?: number;
}

export function readExportSettings(env: Env): ExportSettings {
  const bucket = required(env, 'EXPORT_BUCKET', 'the S3 bucket the export tarballs go to');
  const prefix = env.EXPORT_PREFIX ?? 'export/';
  // The worker's S3 grant is `<bucket>/<prefix>*`: an empty prefix, or one that is not a folder,
  // would let it write over other keys of the bucket.
  if (!/^[^/*?\s][^*?\s]*\/$/.test(prefix) || prefix.includes('//')) {
    throw new ConfigError(`EXPORT_PREFIX must be a folder of the bucket: not empty, ending in "/", not starting with "/", no "//", spaces, "*" or "?" (it is ${JSON.stringify(prefix)})`);
  }
  const schemas = parseSchemaList(optional(env, 'EXPORT_SCHEMAS'));
  const rawConcurrency = optional(env, 'EXPORT_CONCURRENCY');
  const concurrency = rawConcurrency === undefined ? schemas.length : Number(rawConcurrency);
  if (rawConcurrency !== undefined && (!/^\d+$/.test(rawConcurrency) || concurrency < 1 || concurrency > 100)) {
    throw new ConfigError(`EXPORT_CONCURRENCY must be a whole number from 1 to 100: ${JSON.stringify(rawConcurrency)}`);
  }
  return { bucket, prefix, schemas, concurrency, s3Endpoint: url(env, 'S3_ENDPOINT'), tableParallelism: readTableParallelism(env) };
}

/** The configured export schemas alone (EXPORT_SCHEMAS), for functions that show them but do not export. */
export function readExportSchemas(env: Env): string[] {
  return parseSchemaList(optional(env, 'EXPORT_SCHEMAS'));
}

function readTableParallelism(env: Env): number | undefined {
  const raw = optional(env, 'EXPORT_TABLE_PARALLELISM');
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < 1 || value > 64) {
    throw new ConfigError(`EXPORT_TABLE_PARALLELISM must be a whole number from 1 to 64: ${JSON.stringify(raw)}`);
  }
  return value;
}

function parseSchemaList(value: string | undefined): string[] {
  if (value === undefined) return [...DEFAULT_EXPORT_SCHEMAS];
  const schemas = value.split(',').map((s) => s.trim());
  if (schemas.some((s) => s === '')) {
    throw new ConfigError(`EXPORT_SCHEMAS has an empty entry: ${JSON.stringify(value)}`);
  }
  if (new Set(schemas).size !== schemas.length) {
    throw new ConfigError(`EXPORT_SCHEMAS names a schema twice: ${JSON.stringify(value)}`);
  }
  return schemas;
}

export interface TimeLimitedSettings {
  days: number;
  timeZone: string;
}

export function readTimeLimitedSettings(env: Env): TimeLimitedSettings {
  const rawDays = optional(env, 'TIME_LIMITED_DAYS') ?? '50';
  const days = Number(rawDays);
  if (!/^\d+$/.test(rawDays) || !Number.isSafeInteger(days) || days < 1) {
    throw new ConfigError(`TIME_LIMITED_DAYS must be a whole number of days, 1 or more: ${JSON.stringify(rawDays)}`);
  }
  const timeZone = optional(env, 'JOBS_TIME_ZONE') ?? 'Europe/London';
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone });
  } catch {
    throw new ConfigError(`JOBS_TIME_ZONE is not an IANA time zone: ${JSON.stringify(timeZone)}`);
  }
  return { days, timeZone };
}

export type DispatchSettings =
  | { mode: 'lambda'; functionName: string; endpoint?: string }
  | { mode: 'inline' };

/**
 * How an API function hands work to its worker. `workerFunctionVariable` names the setting that
 * holds the worker's full Lambda name (serverless.yml sets it to `<service>-<stage>-<fn>`).
 */
export function readDispatchSettings(env: Env, workerFunctionVariable: string): DispatchSettings {
  const mode = optional(env, 'JOB_DISPATCH') ?? 'lambda';
  const endpoint = url(env, 'LAMBDA_ENDPOINT');
  if (mode === 'inline') {
    if (endpoint) {
      throw new ConfigError('JOB_DISPATCH=inline runs the worker in-process, but LAMBDA_ENDPOINT is set: unset one');
    }
    return { mode };
  }
  if (mode !== 'lambda') {
    throw new ConfigError(`JOB_DISPATCH must be "lambda" or "inline": ${JSON.stringify(mode)}`);
  }
  const functionName = required(env, workerFunctionVariable, 'the full name of the worker Lambda to invoke');
  return { mode, functionName, endpoint };
}

/**
 * How a coordinator (the export's, the restore's) hands each schema step to its schema worker: as
 * readDispatchSettings with `workerFunctionVariable`, except under `sls invoke local` (IS_LOCAL)
 * with no LAMBDA_ENDPOINT, where there is no Lambda to invoke and the steps run in the same process.
 */
export function readStepDispatchSettings(env: Env, workerFunctionVariable = 'EXPORT_SCHEMA_WORKER_FUNCTION'): DispatchSettings {
  if (runsUnderInvokeLocal(env) && !optional(env, 'LAMBDA_ENDPOINT')) return { mode: 'inline' };
  return readDispatchSettings(env, workerFunctionVariable);
}

export interface RestoreSettings {
  /** Where the tarballs are: the export's bucket and prefix, `<prefix><schema>.tgz`. */
  bucket: string;
  prefix: string;
  /** The schemas a restore restores unless told: the export's (EXPORT_SCHEMAS). */
  schemas: string[];
  s3Endpoint?: string;
  /** The reporting database the schemas are restored into. */
  target: DatabaseSettings;
  /** How many schema steps run at once (RESTORE_CONCURRENCY; default 3): restoreSchemaWorker's reserved concurrency. */
  concurrency: number;
  /** Tables of a schema loaded at once (RESTORE_TABLE_PARALLELISM); unset: the CPUs, 2 to 4. */
  tableParallelism?: number;
}

/**
 * The restore's settings. The target is RESTORE_DATABASE_URL (local use) or
 * RESTORE_DATABASE_URL_PARAMETER (an SSM SecureString, deployed); neither stops the function at
 * cold start, naming them. A target equal to DATABASE_URL is refused here too: a restore replaces
 * the schemas it restores.
 */
export function readRestoreSettings(env: Env): RestoreSettings {
  const { bucket, prefix, schemas, s3Endpoint } = readExportSettings(env);
  const url = optional(env, 'RESTORE_DATABASE_URL');
  const urlParameter = optional(env, 'RESTORE_DATABASE_URL_PARAMETER');
  if (!url && !urlParameter) {
    throw new ConfigError(
      'RESTORE_DATABASE_URL is not set: give the connection string of the database the restore loads the schemas into (the reporting database), or RESTORE_DATABASE_URL_PARAMETER naming an SSM SecureString that holds one',
    );
  }
  if (url && !/^postgres(ql)?:\/\//.test(url)) throw new ConfigError('RESTORE_DATABASE_URL must start with postgres:// or postgresql://');
  if (url && url === optional(env, 'DATABASE_URL')) {
    throw new ConfigError('RESTORE_DATABASE_URL is DATABASE_URL: the restore would replace the schemas of the database the export reads. Give the reporting database');
  }
  const rawConcurrency = optional(env, 'RESTORE_CONCURRENCY');
  const concurrency = rawConcurrency === undefined ? 3 : Number(rawConcurrency);
  if (rawConcurrency !== undefined && (!/^\d+$/.test(rawConcurrency) || concurrency < 1 || concurrency > 100)) {
    throw new ConfigError(`RESTORE_CONCURRENCY must be a whole number from 1 to 100: ${JSON.stringify(rawConcurrency)}`);
  }
  const rawParallelism = optional(env, 'RESTORE_TABLE_PARALLELISM');
  const tableParallelism = rawParallelism === undefined ? undefined : Number(rawParallelism);
  if (rawParallelism !== undefined && (!/^\d+$/.test(rawParallelism) || tableParallelism! < 1 || tableParallelism! > 16)) {
    throw new ConfigError(`RESTORE_TABLE_PARALLELISM must be a whole number from 1 to 16: ${JSON.stringify(rawParallelism)}`);
  }
  return { bucket, prefix, schemas, s3Endpoint, target: url ? { url } : { urlParameter }, concurrency, tableParallelism };
}
