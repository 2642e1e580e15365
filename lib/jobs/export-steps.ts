import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError, readDatabaseSettings, readStepDispatchSettings } from '../config';
import type { Env, ExportSettings } from '../config';
import { exportSchemaToBucket } from '../export/export-schema-to-bucket';
import { RUN_FOLDER_PREFIX, removeLeftoverRunFolders } from '../export/remove-leftover-run-folders';
import { RunSnapshotGoneError } from '../export/run-snapshot';
import { recordStepMetrics } from '../metrics';
import { RunCancelledError } from '../runs/cancel-watch';
import { createExportJob } from './export-job';
import type { Dispatch } from './dispatch';
import { readRestoreDispatch, startRestoreAfterExport } from './restore-after-export';
import { createStartSteps } from './start-steps';
import { runStepInline } from './job-functions';
import type { StepWork } from './run-step-worker';

/**
 * Attempts an export step gets in AWS: 1 + exportSchemaWorker's maximumRetryAttempts in
 * serverless.yml (a template test checks they agree).
 */
export const EXPORT_STEP_ATTEMPTS = 2;

/**
 * One step of an export: one schema to `<prefix><schema>.tgz`, the object's metadata naming the
 * run and the schema (the tarball verifier reads them). `removeLeftovers`: first clear the temp
 * folders of stopped attempts; only where an attempt has the temp folder to itself (AWS Lambda).
 * `restoreAfterExport`: how a run that asked for a restore hands it to restoreWorker.
 */
export function createExportStepWork(
  settings: Pick<ExportSettings, 'bucket' | 'prefix' | 'tableParallelism'> & { schemas?: readonly string[] },
  s3: S3Client,
  { removeLeftovers = false, tmpRoot = tmpdir(), restoreAfterExport }: { removeLeftovers?: boolean; tmpRoot?: string; restoreAfterExport?: Dispatch } = {},
): StepWork {
  const work: StepWork = async (step, { sql, steps, reportProgress, signal }) => {
    // The run's one moment, recorded by its coordinator; never a snapshot of this step's own.
    const snapshot = await steps.runSnapshot(step.runId);
    if (!snapshot) throw new RunSnapshotGoneError(step.runId, 'the run has no snapshot recorded');
    if (removeLeftovers) await removeLeftoverRunFolders(tmpRoot);
    const folder = await mkdtemp(join(tmpRoot, RUN_FOLDER_PREFIX));
    const started = performance.now();
    try {
      const { key, asOf, tables, rows, bytes, compressedBytes, timeTakenMs, definitionUnavailable } = await exportSchemaToBucket(
        step.name,
        {
          bucket: settings.bucket,
          prefix: settings.prefix,
          tableParallelism: settings.tableParallelism,
          metadata: stepMetadata(step.runId, step.name),
          // The configured schemas: the path each definition is printed under (schema-definition.ts).
          run: { runId: step.runId, snapshot, schemas: settings.schemas },
          onSnapshotImported: () => steps.markSnapshotImported(step.id),
          ...(signal && { signal }),
          // The cancel watch asks once a second; the ledger is asked again at the last moment, so a
          // run cancelled while its last part was sent leaves its tarball out too.
          beforeCommit: async () => {
            if ((await steps.runStatus(step.runId)) === 'cancelled') throw new RunCancelledError(step.runId);
          },
        },
        // A folder inside: exportSchemaToBucket removes the one it is given.
        { sql, s3, folder: join(folder, 'schema') },
        reportProgress,
      );
      recordStepMetrics({ job: 'export', schema: step.name, outcome: 'succeeded', durationMs: timeTakenMs, rows, bytes });
      return { key, asOf, tables, rows, bytes, compressedBytes, timeTakenMs, ...(definitionUnavailable !== undefined && { definitionUnavailable }) };
    } catch (error) {
      recordStepMetrics({ job: 'export', schema: step.name, outcome: signal?.aborted || error instanceof RunCancelledError ? 'cancelled' : 'failed', durationMs: Math.round(performance.now() - started) });
      throw error;
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  };
  // The step that closes a run that asked for a restore starts it, if its tarballs are verified by then.
  work.afterRunClosed = async (closed, { sql }) => {
    if (closed.status === 'succeeded') await startRestoreAfterExport(sql, closed.id, restoreAfterExport);
  };
  return work;
}

/**
 * The object's user metadata naming its run and schema. S3 sends metadata as HTTP headers, which
 * carry US-ASCII only: a schema name beyond it (the round-trip test's `Awkward "Schema" Ünïcode Ω`)
 * would fail the upload, so it is left out and the verifier takes the name from the manifest.
 */
export function stepMetadata(runId: string, schema: string): Record<string, string> {
  return /^[\x20-\x7e]*$/.test(schema) ? { 'run-id': runId, schema } : { 'run-id': runId };
}

/**
 * The export as the functions wire it: the coordinator job (what exportApi and exportWorker run)
 * and the step work (what exportSchemaWorker runs, and the coordinator in-process when inline).
 */
export function createFannedOutExport(env: Env, settings: ExportSettings, s3: S3Client, options: { removeLeftovers?: boolean } = {}) {
  const database = readDatabaseSettings(env);
  const work = createExportStepWork(settings, s3, { ...options, restoreAfterExport: readRestoreDispatch(env) });
  const dispatch = readStepDispatchSettings(env);
  if (dispatch.mode === 'lambda') assertEveryStepCanStartAtOnce(settings);
  const startSteps = createStartSteps(dispatch, settings.concurrency, (event) => runStepInline(work, event, database));
  return { job: createExportJob(settings, startSteps, { bound: dispatch.mode === 'lambda' ? 'lease' : 'unbounded' }), work };
}

/**
 * Through Lambda, every step of a run must start while the coordinator holds the run's snapshot,
 * which it can for at most its own 15 minutes: a step queued behind another (the schema worker's
 * reserved concurrency, EXPORT_CONCURRENCY, below the number of schemas) would start after a whole
 * schema's export, too late. So the coordinator refuses to start with fewer than one schema worker
 * per schema (docs/export.md, "One moment"). Inline the coordinator holds the snapshot for as long as it takes.
 */
export function assertEveryStepCanStartAtOnce(settings: Pick<ExportSettings, 'concurrency' | 'schemas'>): void {
  if (settings.concurrency >= settings.schemas.length) return;
  throw new ConfigError(
    `EXPORT_CONCURRENCY (${settings.concurrency}) is below the number of EXPORT_SCHEMAS (${settings.schemas.length}: ${settings.schemas.join(', ')}). ` +
      "Every schema of an export run is read in the run's one snapshot, which the coordinator can hold only while it runs, so every " +
      'schema step must be able to start at once: set EXPORT_CONCURRENCY (the schema worker\'s reserved concurrency) to at least the number of schemas.',
  );
}
