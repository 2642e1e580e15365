import type { S3Client } from '@aws-sdk/client-s3';
import type { Sql } from 'postgres';
import { holdConnection } from '../clients/transaction';
import type { HeldConnection } from '../clients/transaction';
import type { RestoreSettings } from '../config';
import { logger } from '../logger';
import { findBucketTarballs, pinnedTarballSource } from '../restore/bucket-tarballs';
import type { BucketTarball } from '../restore/bucket-tarballs';
import { assertReachable, refuseSourceDatabase } from '../restore/check-target';
import { readTarballDefinition } from '../restore/read-tarball-definition';
import type { SchemaReplacement } from '../restore/replace-schemas';
import { RestoreRefusedError } from '../restore/restore-errors';
import { categoriseRestoreFailure, describeTarget } from '../restore/restore-schemas';
import type { RestoreTarget } from '../restore/restore-target';
import { dropSchemas, lockTargetAndRemoveLeftovers, RETIRED_PREFIX, STAGING_PREFIX, unlockTarget } from '../restore/run-statements';
import { createStagingSchemas, refuseWhatTheTargetCannotTake } from '../restore/stage-schemas';
import { createStepLedger } from '../runs/step-ledger';
import type { RunStep, StepLedger } from '../runs/step-ledger';
import { STEPS_CLOSE_THE_RUN } from './job';
import type { Job } from './job';
import { createRestoreRequest } from './restore-request';
import type { RestoreParams } from './restore-request';
import { recordRunClosed } from './run-step-worker';
import { failStepsNotHandedOver } from './start-steps';
import type { StartSteps } from './start-steps';

/** What a restore step works on, fixed by the coordinator (jobs.run_steps.input). */
export interface RestoreStepInput extends Record<string, unknown> {
  key: string;
  etag: string;
  exportRunId: string | null;
  size: number;
  /** Where the step's schema is built out of sight, and where the old one goes when replaced. */
  staging: string;
  retired: string;
}

/** A run's staging and retired names: `waj_restore_<first 12 hex of the run id>_<position>`, so a run's leftovers are known by their name. */
export function restoreRunSchemaNames(runId: string, position: number): { staging: string; retired: string } {
  const key = runId.replaceAll('-', '').slice(0, 12).toLowerCase();
  return { staging: `${STAGING_PREFIX}${key}_${position}`, retired: `${RETIRED_PREFIX}${key}_${position}` };
}

export function stepReplacement(live: string, input: RestoreStepInput): SchemaReplacement {
  return { live, staging: input.staging, retired: input.retired };
}

export interface RestoreJobDeps {
  s3: S3Client;
  target: RestoreTarget;
  /** The export's own database (DATABASE_URL, where the run ledger is too): never a target. */
  sourceDatabaseUrl?: () => Promise<string | undefined>;
}

/**
 * The restore as a coordinator. It finds each schema's tarball in the export bucket (refusing a
 * missing one, one tagged verified=false, and tarballs of different export runs unless the request
 * named its schemas), reads their definitions (the first entry of each), then, in the target and
 * under the restore's advisory lock: removes what earlier restores left, checks the target can
 * take the definitions, and creates every schema's staging copy with its types, sequences and
 * tables, all at once, so that what one schema takes from another binds to the other's copy. It
 * records one step per schema, its input fixed (key, ETag, export run, staging name), and hands
 * each to restoreSchemaWorker; the steps fill their schema and the last puts them all in place
 * (restore-steps.ts). On any failure before the hand-over it drops what it built: nothing changed.
 */
export function createRestoreJob(settings: RestoreSettings, startSteps: StartSteps, deps: RestoreJobDeps): Job<RestoreParams> {
  return {
    ...createRestoreRequest(settings),
    async run(params, { sql, runId }) {
      const ledger = createStepLedger(sql);
      // A retry of a coordinator whose attempt recorded the steps: what it built may be half done.
      if ((await ledger.listSteps(runId)).length > 0) return failQueuedStepsOfRetry(ledger, runId, deps);

      // The target first: a missing or unreadable setting is the first thing to say.
      await deps.target.url();
      const schemas = params.schemas ?? settings.schemas;
      const tarballs = await findBucketTarballs(deps.s3, settings, schemas).catch((error: unknown) => {
        throw categoriseRestoreFailure(error);
      });
      const exportRunId = refuseMixedRuns(tarballs, params);
      if (exportRunId) {
        const [exported] = await sql<{ as_of: Date | null }[]>`SELECT as_of FROM jobs.runs WHERE id = ${exportRunId} AND job = 'export'`;
        if (exported?.as_of) await ledger.recordRunAsOf(runId, exported.as_of.toISOString());
      }
      const inputs: RestoreStepInput[] = tarballs.map((t, position) => ({
        key: t.key,
        etag: t.etag,
        exportRunId: t.exportRunId,
        size: t.size,
        ...restoreRunSchemaNames(runId, position),
      }));
      await stageDefinitions(settings, deps, tarballs, inputs);

      const steps = await ledger.addSteps(runId, schemas, inputs);
      if (steps.length === 0) {
        // Cancelled while the staging tables were being built: they go, and nothing is handed over.
        await dropStagingSchemas(deps.target, inputs.map((input) => input.staging));
        return STEPS_CLOSE_THE_RUN;
      }
      const queued = steps.filter((step) => step.status === 'queued');
      logger.info('Restore fanned out', { runId, exportRunId, steps: steps.map((step) => step.name) });
      const outcomes = await startSteps(queued.map((step) => ({ runId, step: step.name })));
      await failStepsNotHandedOver(ledger, runId, queued, outcomes);
      // Inline, the steps have ended by now; through Lambda, only if none could be handed over.
      const closed = await ledger.closeIfDone(runId);
      if (closed) {
        recordRunClosed(closed);
        if (closed.status !== 'succeeded') await dropRunStaging(deps.target, steps);
      }
      return STEPS_CLOSE_THE_RUN;
    },
  };
}

/**
 * One export run's tarballs, unless the request named its schemas (then any mix is the caller's
 * choice); with `exportRunId` asked for, only that run's. Returns the export run they share, if any.
 */
export function refuseMixedRuns(tarballs: BucketTarball[], params: RestoreParams): string | undefined {
  const runs = new Map<string, string[]>();
  for (const t of tarballs) runs.set(t.exportRunId ?? 'an unknown export run', [...(runs.get(t.exportRunId ?? 'an unknown export run') ?? []), t.schema]);
  const list = () => [...runs].map(([run, schemas]) => `${schemas.join(', ')} from ${run}`).join('; ');
  if (params.exportRunId) {
    const others = tarballs.filter((t) => t.exportRunId !== params.exportRunId);
    if (others.length > 0) {
      throw new RestoreRefusedError(`The tarballs are not all of export run ${params.exportRunId}: ${list()}. A later export has replaced them; restore them by naming no export run`);
    }
    return params.exportRunId;
  }
  if (runs.size > 1 && !params.schemas) {
    throw new RestoreRefusedError(
      `The tarballs come from different export runs (${list()}), so together they are not one moment of the database. Export every schema again, or restore them anyway by naming the schemas: {"schemas": [...]}`,
    );
  }
  return runs.size === 1 ? (tarballs[0]!.exportRunId ?? undefined) : undefined;
}

/** The coordinator's part in the target: leftovers removed, the target checked, every staging schema created with its tables. */
async function stageDefinitions(settings: RestoreSettings, deps: RestoreJobDeps, tarballs: BucketTarball[], inputs: RestoreStepInput[]): Promise<void> {
  const definitions = await Promise.all(
    tarballs.map(async (t) => {
      const { definition } = await readTarballDefinition(pinnedTarballSource(deps.s3, settings.bucket, t));
      if (definition.schema !== t.schema) throw new RestoreRefusedError(`s3://${settings.bucket}/${t.key} holds schema ${definition.schema}, not ${t.schema}`);
      return definition;
    }),
  ).catch((error: unknown) => {
    throw categoriseRestoreFailure(error);
  });
  const replacements = inputs.map((input, n) => stepReplacement(tarballs[n]!.schema, input));
  const url = await deps.target.url();
  const sql = await deps.target.connect(2);
  let held: HeldConnection | undefined;
  let created = false;
  try {
    await assertReachable(sql, describeTarget(url));
    await refuseSourceDatabase(sql, url, await deps.sourceDatabaseUrl?.());
    held = await holdConnection(sql);
    // Only one restore run is active at a time (the ledger's rule), and the lock keeps npm run restore out: whatever is there is left over.
    const leftovers = await lockTargetAndRemoveLeftovers(held);
    if (leftovers.length > 0) logger.warn('Removed what earlier restores left in the target', { schemas: leftovers });
    await refuseWhatTheTargetCannotTake(held, definitions);
    created = true;
    await createStagingSchemas(held, definitions, replacements);
  } catch (error) {
    if (created) await dropSchemas(sql, replacements.map((r) => r.staging));
    throw categoriseRestoreFailure(error);
  } finally {
    await unlockTarget(held);
    await sql.end({ timeout: 5 });
  }
}

/** Drops every staging schema of the run's steps (the run ended without them put in place). Never throws. */
export async function dropRunStaging(target: RestoreTarget, steps: readonly RunStep[]): Promise<void> {
  await dropStagingSchemas(
    target,
    steps.map((step) => (step.input as RestoreStepInput | null)?.staging).filter((name): name is string => typeof name === 'string'),
  );
}

async function dropStagingSchemas(target: RestoreTarget, staging: string[]): Promise<void> {
  if (staging.length === 0) return;
  let sql: Sql | undefined;
  try {
    sql = await target.connect(2);
    const left = await dropSchemas(sql, staging);
    if (left) logger.error('Could not drop the run\'s staging schemas; the next restore removes them', { staging, error: left });
    else logger.info('Dropped the run\'s staging schemas: nothing was put in place', { staging });
  } catch (error) {
    logger.error('Could not drop the run\'s staging schemas; the next restore removes them', { staging, error: error as Error });
  } finally {
    await sql?.end({ timeout: 5 });
  }
}

/** A retry of the coordinator: steps it had not handed over cannot be trusted to start on what it built. */
async function failQueuedStepsOfRetry(ledger: StepLedger, runId: string, deps: RestoreJobDeps): Promise<typeof STEPS_CLOSE_THE_RUN> {
  const steps = await ledger.listSteps(runId);
  for (const step of steps) {
    if (step.status === 'queued') await ledger.finish(step.id, { status: 'failed', error: "The restore's coordinator was interrupted before it handed this step over: start a new restore run", final: true });
  }
  logger.warn('Restore coordinator retried: its steps still queued failed', { runId });
  const closed = await ledger.closeIfDone(runId);
  if (closed) {
    recordRunClosed(closed);
    if (closed.status !== 'succeeded') await dropRunStaging(deps.target, steps);
  }
  return STEPS_CLOSE_THE_RUN;
}
