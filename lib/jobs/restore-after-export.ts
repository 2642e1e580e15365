import type { JSONValue, Sql } from 'postgres';
import { readStepDispatchSettings } from '../config';
import type { Env } from '../config';
import { logger } from '../logger';
import { ActiveRunError } from '../runs/run-errors';
import { createRunLedger } from '../runs/run-ledger';
import { isUuid } from '../runs/run';
import { createLambdaDispatch } from './dispatch';
import type { Dispatch } from './dispatch';

/** What an export run that asked for a restore (`{"restore": true}`) records of it in its result. */
export type RestoreAfterExport = { runId: string } | { started: false; reason: string };

/**
 * Starts the restore an export run asked for, once the run has succeeded and the tarball verifier
 * has found every one of its tarballs verified: a restore run of the same schemas, pinned to that
 * export run (`exportRunId`), handed to restoreWorker. Called where either can become true last:
 * by the step that closes the export run, and by the verifier after it records a check. Of any
 * number of callers one starts it: the first to mark the export run's result (`restore`), by one
 * conditional UPDATE. A tarball that failed its check, or another restore run already active, is
 * recorded there instead, as is a worker that could not be invoked. Never throws: the export run
 * has ended either way.
 */
export async function startRestoreAfterExport(sql: Sql, exportRunId: string, dispatch: Dispatch | undefined): Promise<RestoreAfterExport | undefined> {
  if (!isUuid(exportRunId)) return undefined;
  try {
    const record = async (restore: RestoreAfterExport) =>
      sql`UPDATE jobs.runs SET result = jsonb_set(result, '{restore}', ${sql.json(restore as unknown as JSONValue)}) WHERE id = ${exportRunId}`;
    const asked = sql`job = 'export' AND status = 'succeeded' AND params->>'restore' = 'true' AND NOT (result ? 'restore')`;

    const [failed] = await sql<{ names: string[] }[]>`
      UPDATE jobs.runs r SET result = jsonb_set(r.result, '{restore}', jsonb_build_object('started', false, 'reason',
               'Not restored: the tarball verifier found ' || f.names || ' not matching its manifest'))
      FROM (SELECT string_agg(name, ', ' ORDER BY position) AS names FROM jobs.run_steps
            WHERE run_id = ${exportRunId} AND verification->>'status' = 'failed') f
      WHERE r.id = ${exportRunId} AND ${asked} AND f.names IS NOT NULL
      RETURNING ARRAY[f.names] AS names`;
    if (failed) {
      logger.warn('The export asked for a restore, but a tarball failed its verification: not restored', { exportRunId, failed: failed.names });
      return undefined;
    }
    // Every step verified: claim the start, so that one caller alone starts it.
    const [claimed] = await sql<{ trigger: 'http' | 'schedule' | 'manual'; schemas: string[] }[]>`
      UPDATE jobs.runs r SET result = jsonb_set(r.result, '{restore}', '{"starting": true}')
      WHERE r.id = ${exportRunId} AND ${asked}
        AND NOT EXISTS (SELECT 1 FROM jobs.run_steps s WHERE s.run_id = r.id AND s.verification->>'status' IS DISTINCT FROM 'verified')
      RETURNING r.trigger, ARRAY(SELECT name FROM jobs.run_steps s WHERE s.run_id = r.id ORDER BY position) AS schemas`;
    if (!claimed) return undefined;

    if (!dispatch) {
      const restore = { started: false as const, reason: 'Not restored: this export ran where no restore worker is wired (inline); start the restore with POST /jobs/restore' };
      await record(restore);
      return restore;
    }
    const ledger = createRunLedger(sql);
    let runId: string;
    try {
      runId = (await ledger.enqueue('restore', claimed.trigger, { schemas: claimed.schemas, exportRunId }, undefined, { kind: 'export', exportRunId })).id;
    } catch (error) {
      if (!(error instanceof ActiveRunError)) throw error;
      const restore = { started: false as const, reason: `Not restored: restore run ${error.activeRunId} was already queued or running` };
      await record(restore);
      return restore;
    }
    await record({ runId });
    try {
      await dispatch({ runId });
    } catch (error) {
      await ledger.fail(runId, `Could not hand the run to the worker: ${(error as Error).message}`).catch(() => {});
      logger.error('Could not hand the restore after the export to its worker', { exportRunId, runId, error: error as Error });
      return { runId };
    }
    logger.info('Restore started after the export', { exportRunId, runId, schemas: claimed.schemas });
    return { runId };
  } catch (error) {
    logger.error('Could not start the restore the export asked for', { exportRunId, error: error as Error });
    return undefined;
  }
}

/**
 * How the functions that may close an export run (its schema worker, the coordinator running
 * steps inline, the verifier) hand a restore to restoreWorker: by Lambda with
 * RESTORE_WORKER_FUNCTION; none where it is not set, or where nothing can be invoked (inline, or
 * `sls invoke local` without a Lambda endpoint): the export run then says so.
 */
export function readRestoreDispatch(env: Env): Dispatch | undefined {
  if (!env.RESTORE_WORKER_FUNCTION || env.JOB_DISPATCH === 'inline') return undefined;
  const settings = readStepDispatchSettings(env, 'RESTORE_WORKER_FUNCTION');
  return settings.mode === 'lambda' ? createLambdaDispatch(settings) : undefined;
}
