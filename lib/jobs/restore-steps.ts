import { availableParallelism } from 'node:os';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Sql } from 'postgres';
import { readDatabaseUrlParameter } from '../clients/database';
import { isConnectionLost } from '../clients/transaction';
import { readDatabaseSettings, readStepDispatchSettings } from '../config';
import type { Env, RestoreSettings } from '../config';
import { postDataWork } from '../definition/definition-statements';
import { quoteIdentifier } from '../export/quote-identifier';
import { recordStepMetrics } from '../metrics';
import { pinnedTarballSource, refuseIfTaggedUnverified } from '../restore/bucket-tarballs';
import { putSchemasInPlace } from '../restore/put-schemas-in-place';
import { readTarballDefinition } from '../restore/read-tarball-definition';
import type { TarballDefinition } from '../restore/read-tarball-definition';
import { RestoreRefusedError } from '../restore/restore-errors';
import { categoriseRestoreFailure } from '../restore/restore-schemas';
import { createRestoreTarget } from '../restore/restore-target';
import type { RestoreTarget } from '../restore/restore-target';
import { loadStagedSchemas, stagingNames } from '../restore/stage-schemas';
import { RunCancelledError } from '../runs/cancel-watch';
import type { RunStep, StepProgress, StepResult } from '../runs/step-ledger';
import { logger } from '../logger';
import { runStepInline } from './job-functions';
import { createRestoreJob, dropRunStaging, stepReplacement } from './restore-job';
import type { RestoreStepInput } from './restore-job';
import type { StepWork } from './run-step-worker';
import { createStartSteps } from './start-steps';

/**
 * Attempts a restore step gets in AWS: 1 + restoreSchemaWorker's maximumRetryAttempts in
 * serverless.yml (a template test checks they agree). Only a lost connection to the target is
 * tried again; a tarball or a definition the target refuses fails the step at once.
 */
export const RESTORE_STEP_ATTEMPTS = 2;

/** A restore step's failure, and whether a retry could mend it (isFinalStepFailure reads `final`). */
export class RestoreStepError extends Error {
  override readonly name = 'RestoreStepError';
  constructor(
    message: string,
    readonly final: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Whether the failure, or one of its causes, is the connection to the target going away. */
function lostConnection(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth += 1) if (isConnectionLost(e)) return true;
  return false;
}

/**
 * One step of a restore: one schema's tarball into the staging schema the coordinator created for
 * it (restore-job.ts). It reads the tarball the run fixed (same key and ETag, not tagged
 * verified=false), loads and checks every table against the manifest (refusing an export run other
 * than the one the run found), builds its keys and indexes, the foreign keys within its schema
 * and to schemas the run does not restore, sets its sequences and runs ANALYZE. Then it marks
 * itself built: the step that finds every other step built too builds the foreign keys between
 * the run's schemas and puts them all in place in one transaction. The step whose ending closes a
 * run that did not succeed drops every staging schema of it (afterRunClosed): nothing replaced,
 * nothing left behind.
 */
export function createRestoreStepWork(settings: Pick<RestoreSettings, 'bucket' | 'tableParallelism'>, s3: S3Client, target: RestoreTarget): StepWork {
  const work: StepWork = async (step, { steps, reportProgress, signal }) => {
    const started = performance.now();
    try {
      const result = await restoreStep(step, await steps.listSteps(step.runId), {
        settings,
        s3,
        target,
        reportProgress,
        markStaged: () => steps.markStaged(step.id),
        signal,
      });
      recordStepMetrics({ job: 'restore', schema: step.name, outcome: 'succeeded', durationMs: Math.round(performance.now() - started), rows: result.rows, bytes: result.bytes });
      return result;
    } catch (error) {
      if (signal?.aborted || error instanceof RunCancelledError) {
        // Cancelled with its run: no step will put the run in place. What the steps built goes,
        // but for a step still loading (it drops its own when it notices).
        recordStepMetrics({ job: 'restore', schema: step.name, outcome: 'cancelled', durationMs: Math.round(performance.now() - started) });
        await dropRunStaging(target, (await steps.listSteps(step.runId)).filter((s) => s.id === step.id || s.status !== 'running'));
        throw error;
      }
      recordStepMetrics({ job: 'restore', schema: step.name, outcome: 'failed', durationMs: Math.round(performance.now() - started) });
      if (error instanceof RestoreStepError) throw error;
      throw new RestoreStepError(categoriseRestoreFailure(error).message, !lostConnection(error), { cause: error });
    }
  };
  work.afterRunClosed = async (closed, { steps }) => {
    if (closed.status !== 'succeeded') await dropRunStaging(target, await steps.listSteps(closed.id));
  };
  return work;
}

interface StepDeps {
  settings: Pick<RestoreSettings, 'bucket' | 'tableParallelism'>;
  s3: S3Client;
  target: RestoreTarget;
  reportProgress(progress: StepProgress): void;
  markStaged(): Promise<{ last: boolean; failed: string[] }>;
  signal?: AbortSignal;
}

async function restoreStep(step: RunStep, runSteps: RunStep[], deps: StepDeps): Promise<StepResult> {
  const input = step.input as RestoreStepInput | null;
  if (!input?.staging) throw new RestoreStepError(`Step ${step.name} of run ${step.runId} has no input: it was not recorded by the restore's coordinator`, true);
  const failed = runSteps.filter((s) => s.status === 'failed' || s.status === 'timed_out').map((s) => s.name);
  if (failed.length > 0) throw new RestoreStepError(`Not loaded: ${failed.join(', ')} failed, so this run puts nothing in place`, true);

  const replacements = runSteps.map((s) => stepReplacement(s.name, s.input as RestoreStepInput));
  const names = stagingNames(replacements);
  const runSchemas = new Set(runSteps.map((s) => s.name));
  const parallelism = deps.settings.tableParallelism ?? Math.min(4, Math.max(2, availableParallelism()));
  const started = performance.now();
  // `parallelism` loading and building, one to end a stuck one (load-tarballs.ts), one for checks.
  const sql = await deps.target.connect(parallelism + 2);
  try {
    if (!(await schemaExists(sql, input.staging))) return await alreadyPutInPlace(sql, step, input);
    if (step.attempts > 1) await clearBuiltObjects(sql, input.staging);
    await refuseIfTaggedUnverified(deps.s3, deps.settings.bucket, input.key);
    const tarball = await readTarballDefinition(pinnedTarballSource(deps.s3, deps.settings.bucket, input));
    if (tarball.definition.schema !== step.name) throw new RestoreRefusedError(`${tarball.source.label} holds schema ${tarball.definition.schema}, not ${step.name}`);

    const progress: StepProgress = { tablesDone: 0, rows: 0, bytes: 0 };
    const [staged] = await loadStagedSchemas(sql, [tarball], names, {
      parallelism,
      signal: deps.signal,
      // Keys between the run's schemas wait for the last step: the other schema may not be filled yet.
      foreignKeysTo: (schema) => schema === step.name || !runSchemas.has(schema),
      onEvent(event) {
        if (event.kind === 'table-loaded') {
          progress.tablesDone += 1;
          progress.rows += event.table.rows;
        } else if (event.kind === 'bytes') {
          progress.bytes = event.bytes;
        } else {
          return;
        }
        deps.reportProgress({ ...progress });
      },
    });
    if (input.exportRunId && staged!.runId !== input.exportRunId) {
      throw new RestoreRefusedError(`${tarball.source.label}: its manifest is of export run ${staged!.runId ?? '(none)'}, its object says ${input.exportRunId}`);
    }
    const result: StepResult = {
      key: input.key,
      ...(staged!.runId && { exportRunId: staged!.runId }),
      ...(staged!.asOf && { asOf: staged!.asOf }),
      tables: staged!.tables,
      rows: staged!.rows,
      bytes: staged!.bytes,
      compressedBytes: input.size,
      replaced: false,
    };
    deps.signal?.throwIfAborted();
    // Throws if the run was cancelled meanwhile: a cancelled run is never put in place.
    const { last } = await deps.markStaged();
    if (last) {
      await putRunInPlace(sql, step, runSteps, tarball, { ...deps, names, runSchemas, replacements, parallelism, asOf: staged!.asOf });
      result.replaced = true;
    }
    return { ...result, timeTakenMs: Math.round(performance.now() - started) };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** The run's last step: the foreign keys between its schemas, then every schema in place in one transaction. */
async function putRunInPlace(
  sql: Sql,
  step: RunStep,
  runSteps: RunStep[],
  own: TarballDefinition,
  context: StepDeps & { names: ReturnType<typeof stagingNames>; runSchemas: Set<string>; replacements: ReturnType<typeof stepReplacement>[]; parallelism: number; asOf?: string },
): Promise<void> {
  const definitions = await Promise.all(
    runSteps.map(async (s) =>
      s.id === step.id ? own.definition : (await readTarballDefinition(pinnedTarballSource(context.s3, context.settings.bucket, s.input as RestoreStepInput))).definition,
    ),
  );
  const foreignKeys = definitions.flatMap((definition) =>
    postDataWork([definition], context.names, 2, { foreignKeysTo: (schema) => schema !== definition.schema && context.runSchemas.has(schema), keysValidatedApart: true }),
  );
  const exportRuns = [...new Set(runSteps.map((s) => (s.input as RestoreStepInput).exportRunId ?? 'unknown'))];
  await putSchemasInPlace(sql, context.replacements, {
    foreignKeys,
    parallelism: context.parallelism,
    comment: () => `Restored by water-abstraction-jobs: restore run ${step.runId}, export run ${exportRuns.join(', ')}${context.asOf ? `, as of ${context.asOf}` : ''}`,
    onRetry: (attempt, error) => logger.info('Readers hold the old tables; trying the replacement again', { runId: step.runId, attempt, error: error.message }),
    onWarning: (message) => logger.warn(message, { runId: step.runId }),
  });
  logger.info('Restore put in place', { runId: step.runId, schemas: context.replacements.map((r) => r.live), foreignKeysBetweenSchemas: foreignKeys.length });
}

async function schemaExists(sql: Sql, name: string): Promise<boolean> {
  return (await sql`SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ${name}`).length > 0;
}

/**
 * No staging schema: a retry of the step that put the run in place (its attempt committed the
 * replacement, then stopped before recording it: the live schema's comment names the run), or
 * another restore removed it.
 */
async function alreadyPutInPlace(sql: Sql, step: RunStep, input: RestoreStepInput): Promise<StepResult> {
  const [live] = await sql<{ comment: string | null }[]>`
    SELECT obj_description(oid, 'pg_namespace') AS comment FROM pg_catalog.pg_namespace WHERE nspname = ${step.name}`;
  if (live?.comment?.includes(`restore run ${step.runId}`)) {
    logger.warn('The run was put in place by an earlier attempt of this step; its figures went with it', { runId: step.runId, step: step.name });
    return { key: input.key, tables: 0, rows: 0, bytes: 0, compressedBytes: input.size, replaced: true };
  }
  throw new RestoreStepError(`Its staging schema ${input.staging} is gone from the target (another restore removed it?): start a new restore run`, true);
}

/** A retried step starts again on its tables: what the failed attempt built after the rows (keys, checks, indexes) goes; each table is emptied as it loads. */
async function clearBuiltObjects(sql: Sql, staging: string): Promise<void> {
  const constraints = await sql<{ statement: string }[]>`
    SELECT format('ALTER TABLE %I.%I DROP CONSTRAINT IF EXISTS %I', n.nspname, c.relname, k.conname) AS statement
    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${staging} AND k.contype IN ('p', 'u', 'c', 'x', 'f') AND k.conparentid = 0
    ORDER BY k.contype = 'f' DESC`;
  for (const { statement } of constraints) await sql.unsafe(statement);
  const indexes = await sql<{ name: string }[]>`
    SELECT i.relname AS name FROM pg_catalog.pg_class i JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
    WHERE n.nspname = ${staging} AND i.relkind IN ('i', 'I') AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.oid)`;
  for (const { name } of indexes) await sql.unsafe(`DROP INDEX IF EXISTS ${quoteIdentifier(staging)}.${quoteIdentifier(name)}`);
}

/**
 * The restore as the functions wire it: the coordinator job (restoreWorker) and the step work
 * (restoreSchemaWorker, and the coordinator in-process when inline).
 */
export function createFannedOutRestore(env: Env, settings: RestoreSettings, s3: S3Client) {
  const database = readDatabaseSettings(env);
  const target = createRestoreTarget(settings.target);
  const work = createRestoreStepWork(settings, s3, target);
  const dispatch = readStepDispatchSettings(env, 'RESTORE_SCHEMA_WORKER_FUNCTION');
  const startSteps = createStartSteps(dispatch, settings.concurrency, (event) => runStepInline(work, event, database));
  // The database the export reads, which the coordinator refuses as a target (read from SSM once, when deployed).
  const sourceDatabaseUrl = async () => database.url ?? readDatabaseUrlParameter(database.urlParameter!);
  return { job: createRestoreJob(settings, startSteps, { s3, target, sourceDatabaseUrl }), work };
}
