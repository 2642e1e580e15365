import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import type { S3Client } from '@aws-sdk/client-s3';
import { logger } from '../logger';
import { exportSchema } from './export-schema';
import { RUN_FOLDER_PREFIX, removeLeftoverRunFolders } from './remove-leftover-run-folders';
import type { TableSummary } from './export-schema';

export type { TableSummary } from './export-schema';

export interface ExportSettings {
  bucket: string;
  /** Key prefix, e.g. 'export/'; each schema goes to `${prefix}${schema}.tgz`. */
  prefix: string;
  schemas: string[];
  /** Tables of a schema read at once; the CPUs unless given (see exportSchema). */
  tableParallelism?: number;
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
 * Exports each schema, in the order given, to `s3://bucket/${prefix}${schema}.tgz`.
 *
 * A schema that fails is logged and reported in the result, and the next one still runs; this
 * never throws for a failed schema (assertExportSucceeded does). Temporary files live in one
 * folder made for this run, removed at the end whatever happened.
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
  try {
    for (const [index, schema] of settings.schemas.entries()) {
      progress.currentSchema = schema;
      onProgress?.({ ...progress });
      outcomes.push(await exportOneSchema(schema, index, settings, deps, runFolder, progress, onProgress));
      progress.schemasDone += 1;
    }
  } finally {
    await rm(runFolder, { recursive: true, force: true });
  }
  delete progress.currentSchema;
  onProgress?.({ ...progress });

  const timeTakenMs = Math.round(performance.now() - started);
  const failed = outcomes.filter((outcome) => outcome.status === 'failed').map((outcome) => outcome.schema);
  logger.info('DB export complete', { timeTakenMs, schemas: outcomes.length, failed });
  return { schemas: outcomes, timeTakenMs };
}

async function exportOneSchema(
  schema: string,
  index: number,
  settings: ExportSettings,
  deps: ExportDeps,
  runFolder: string,
  progress: ExportProgress,
  onProgress?: (progress: ExportProgress) => void,
): Promise<SchemaOutcome> {
  const started = performance.now();
  const key = `${settings.prefix}${schema}.tgz`;
  // Named by position: a schema name may hold anything a path should not.
  const folder = join(runFolder, String(index));
  const bytesBefore = progress.bytes;
  let bytesOfFinishedTables = 0;
  try {
    const { tables, compressedBytes } = await exportSchema(schema, {
      sql: deps.sql,
      s3: deps.s3,
      bucket: settings.bucket,
      key,
      folder,
      parallelism: settings.tableParallelism,
      onTableBytes: (bytes) => {
        progress.bytes = bytesBefore + bytesOfFinishedTables + bytes;
        onProgress?.({ ...progress });
      },
      onTableDone: (table: TableSummary) => {
        bytesOfFinishedTables += table.bytes;
        progress.bytes = bytesBefore + bytesOfFinishedTables;
        progress.tablesDone += 1;
        progress.rows += table.rows;
        onProgress?.({ ...progress });
      },
    });
    const outcome: SchemaOutcome = {
      schema,
      status: 'succeeded',
      key,
      tables: tables.length,
      rows: sum(tables.map((table) => table.rows)),
      bytes: sum(tables.map((table) => table.bytes)),
      compressedBytes,
      timeTakenMs: Math.round(performance.now() - started),
    };
    logger.info('Schema exported', { ...outcome });
    return outcome;
  } catch (error) {
    const outcome: SchemaOutcome = {
      schema,
      status: 'failed',
      key,
      timeTakenMs: Math.round(performance.now() - started),
      error: error instanceof Error ? error.message : String(error),
    };
    logger.error('Schema export failed', { schema, key, timeTakenMs: outcome.timeTakenMs, error: error as Error });
    return outcome;
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
