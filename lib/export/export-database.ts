import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import type { S3Client } from '@aws-sdk/client-s3';
import { logger } from '../logger';
import { exportSchema } from './export-schema';
import { RUN_FOLDER_PREFIX, removeLeftoverRunFolders } from './remove-leftover-run-folders';
import { holdRunSnapshot } from './run-snapshot';
import type { HeldRunSnapshot, RunSnapshot } from './run-snapshot';
import type { TableSummary } from './export-schema';

export type { TableSummary } from './export-schema';

export interface ExportSettings {
  bucket: string;
  /** Key prefix, e.g. 'export/'; each schema goes to `${prefix}${schema}.tgz`. */
  prefix: string;
  schemas: string[];
  /** Tables of a schema read at once; the CPUs unless given (see exportSchema). */
  tableParallelism?: number;
  /** Named in every manifest; a new uuid unless given. */
  runId?: string;
}

export interface ExportDeps {
  sql: Sql;
  s3: S3Client;
  /** Where the per-run temporary folder is made; os.tmpdir() unless given. */
  tmpRoot?: string;
  /**
   * First remove run folders left in tmpRoot by runs that were stopped (see
   * removeLeftoverRunFolders): only where no other run can share tmpRoot, i.e. in AWS Lambda.
   */
  removeLeftoverRunFolders?: boolean;
}

export interface SchemaOutcome {
  schema: string;
  status: 'succeeded' | 'failed';
  key?: string;
  tables?: number;
  rows?: number;
  bytes?: number;
  compressedBytes?: number;
  asOf?: string;
  timeTakenMs: number;
  error?: string;
}

export interface ExportResult {
  schemas: SchemaOutcome[];
  timeTakenMs: number;
}

export interface ExportProgress {
  schemasDone: number;
  schemasTotal: number;
  tablesDone: number;
  rows: number;
  bytes: number;
  currentSchema?: string;
}

/** Thrown by assertExportSucceeded; carries the whole result so the caller can still report it. */
export class ExportFailedError extends Error {
  readonly result: ExportResult;

  constructor(result: ExportResult) {
    const failed = result.schemas.filter((outcome) => outcome.status === 'failed');
    super(`DB export failed for ${failed.length} of ${result.schemas.length} schemas: ${failed.map((o) => `${o.schema} (${o.error ?? 'unknown error'})`).join('; ')}`);
    this.name = 'ExportFailedError';
    this.result = result;
  }
}

export function assertExportSucceeded(result: ExportResult): void {
  if (result.schemas.some((outcome) => outcome.status === 'failed')) throw new ExportFailedError(result);
}

/**
 * Exports each schema in this process, in the order given, to `s3://bucket/${prefix}${schema}.tgz`.
 *
 * A schema that fails is logged and reported in the result, and the next one still runs; this
 * never throws for a failed schema (assertExportSucceeded does). Temporary files live in one
 * folder made for this run, removed at the end whatever happened. The export job does not use
 * this (it fans out, one step per schema: lib/jobs/export-job.ts); benchmarks and tests do.
 */
export async function exportDatabase(
  settings: ExportSettings,
  deps: ExportDeps,
  onProgress?: (progress: ExportProgress) => void,
): Promise<ExportResult> {
  const started = performance.now();
  const tmpRoot = deps.tmpRoot ?? tmpdir();
  if (deps.removeLeftoverRunFolders) await removeLeftoverRunFolders(tmpRoot);
  const runFolder = await mkdtemp(join(tmpRoot, RUN_FOLDER_PREFIX));
  const outcomes: SchemaOutcome[] = [];
  const progress: ExportProgress = { schemasDone: 0, schemasTotal: settings.schemas.length, tablesDone: 0, rows: 0, bytes: 0 };
  const runId = settings.runId ?? randomUUID();
  let held: HeldRunSnapshot | undefined;
  try {
    // One moment for every schema, as the job's run has; it takes a connection of the pool's
    // besides the ones the schemas read with.
    if (deps.sql.options.max < 2) throw new RangeError('exportDatabase needs a pool of at least 2 connections: one holds the run\'s snapshot');
    held = await holdRunSnapshot(deps.sql, runId).catch((error: unknown) => {
      const cause = `Opening the run's snapshot: ${error instanceof Error ? error.message : String(error)}`;
      for (const schema of settings.schemas) outcomes.push({ schema, status: 'failed', key: `${settings.prefix}${schema}.tgz`, timeTakenMs: 0, error: cause });
      return undefined;
    });
    const run = held && { runId, snapshot: held.snapshot };
    for (const [index, schema] of settings.schemas.entries()) {
      if (!run) break;
      progress.currentSchema = schema;
      onProgress?.({ ...progress });
      outcomes.push(await exportOneSchema(schema, index, { ...settings, run }, deps, runFolder, progress, onProgress));
      progress.schemasDone += 1;
    }
  } finally {
    await held?.release();
    await rm(runFolder, { recursive: true, force: true });
  }
  delete progress.currentSchema;
  onProgress?.({ ...progress });

  const timeTakenMs = Math.round(performance.now() - started);
  const failed = outcomes.filter((outcome) => outcome.status === 'failed').map((outcome) => outcome.schema);
  logger.info('DB export complete', { timeTakenMs, schemas: outcomes.length, failed });
  return { schemas: outcomes, timeTakenMs };
}

/** One schema's tarball, as uploaded. */
export interface SchemaUpload {
  key: string;
  /** The moment its rows show (the run's snapshot). */
  asOf: string;
  tables: number;
  rows: number;
  bytes: number;
  compressedBytes: number;
  timeTakenMs: number;
}

/** Progress within one schema. */
export interface SchemaProgress {
  tablesDone: number;
  rows: number;
  bytes: number;
}

/**
 * Exports one schema to `s3://bucket/${prefix}${schema}.tgz`, staging its CSV files in `folder`
 * (made and removed here). Throws on any failure, with the cause; nothing is left at the key.
 * What an export step does, in whichever invocation carries the step.
 */
export async function exportSchemaToBucket(
  schema: string,
  target: {
    bucket: string;
    prefix: string;
    run: { runId: string; snapshot: RunSnapshot; schemas?: readonly string[] };
    onSnapshotImported?: () => Promise<void>;
    metadata?: Record<string, string>;
    tableParallelism?: number;
  },
  deps: { sql: Sql; s3: S3Client; folder: string },
  onProgress?: (progress: SchemaProgress) => void,
): Promise<SchemaUpload> {
  const started = performance.now();
  const key = `${target.prefix}${schema}.tgz`;
  const progress: SchemaProgress = { tablesDone: 0, rows: 0, bytes: 0 };
  let bytesOfFinishedTables = 0;
  try {
    const { tables, compressedBytes } = await exportSchema(schema, {
      sql: deps.sql,
      s3: deps.s3,
      bucket: target.bucket,
      key,
      run: target.run,
      ...(target.onSnapshotImported && { onSnapshotImported: target.onSnapshotImported }),
      ...(target.metadata && { metadata: target.metadata }),
      folder: deps.folder,
      parallelism: target.tableParallelism,
      onTableBytes: (bytes) => {
        progress.bytes = bytesOfFinishedTables + bytes;
        onProgress?.({ ...progress });
      },
      onTableDone: (table: TableSummary) => {
        bytesOfFinishedTables += table.bytes;
        progress.bytes = bytesOfFinishedTables;
        progress.tablesDone += 1;
        progress.rows += table.rows;
        onProgress?.({ ...progress });
      },
    });
    const upload: SchemaUpload = {
      key,
      asOf: target.run.snapshot.asOf,
      tables: tables.length,
      rows: sum(tables.map((table) => table.rows)),
      bytes: sum(tables.map((table) => table.bytes)),
      compressedBytes,
      timeTakenMs: Math.round(performance.now() - started),
    };
    logger.info('Schema exported', { schema, ...upload });
    return upload;
  } catch (error) {
    logger.error('Schema export failed', { schema, key, timeTakenMs: Math.round(performance.now() - started), error: error as Error });
    throw error;
  } finally {
    await rm(deps.folder, { recursive: true, force: true });
  }
}

async function exportOneSchema(
  schema: string,
  index: number,
  settings: ExportSettings & { run: { runId: string; snapshot: RunSnapshot } },
  deps: ExportDeps,
  runFolder: string,
  progress: ExportProgress,
  onProgress?: (progress: ExportProgress) => void,
): Promise<SchemaOutcome> {
  const started = performance.now();
  const before = { ...progress };
  try {
    // Named by position: a schema name may hold anything a path should not.
    const upload = await exportSchemaToBucket(schema, settings, { sql: deps.sql, s3: deps.s3, folder: join(runFolder, String(index)) }, (p) => {
      progress.tablesDone = before.tablesDone + p.tablesDone;
      progress.rows = before.rows + p.rows;
      progress.bytes = before.bytes + p.bytes;
      onProgress?.({ ...progress });
    });
    return { schema, status: 'succeeded', ...upload };
  } catch (error) {
    return {
      schema,
      status: 'failed',
      key: `${settings.prefix}${schema}.tgz`,
      timeTakenMs: Math.round(performance.now() - started),
      error: error instanceof Error ? error.message : String(error),
    };
  }
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
