import { rm } from 'node:fs/promises';
import type { Sql } from 'postgres';
import type { S3Client } from '@aws-sdk/client-s3';
import { logger } from '../logger';
import { RunCancelledError } from '../runs/cancel-watch';
import { exportSchema } from './export-schema';
import type { TableSummary } from './export-schema';
import type { RunSnapshot } from './run-snapshot';

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
  /** Why the tarball carries no definition, when it does not (a restore refuses it). */
  definitionUnavailable?: string;
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
    /** Stops it (the run was cancelled): nothing is uploaded, nothing is left behind. */
    signal?: AbortSignal;
    /** Asked just before the tarball appears at its key; a throw stops it (exportSchema's beforeCommit). */
    beforeCommit?: () => Promise<void>;
  },
  deps: { sql: Sql; s3: S3Client; folder: string },
  onProgress?: (progress: SchemaProgress) => void,
): Promise<SchemaUpload> {
  const started = performance.now();
  const key = `${target.prefix}${schema}.tgz`;
  const progress: SchemaProgress = { tablesDone: 0, rows: 0, bytes: 0 };
  let bytesOfFinishedTables = 0;
  try {
    const { tables, compressedBytes, definitionUnavailable } = await exportSchema(schema, {
      sql: deps.sql,
      s3: deps.s3,
      bucket: target.bucket,
      key,
      run: target.run,
      ...(target.onSnapshotImported && { onSnapshotImported: target.onSnapshotImported }),
      ...(target.metadata && { metadata: target.metadata }),
      folder: deps.folder,
      parallelism: target.tableParallelism,
      ...(target.signal && { signal: target.signal }),
      ...(target.beforeCommit && { beforeCommit: target.beforeCommit }),
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
      ...(definitionUnavailable !== undefined && { definitionUnavailable }),
    };
    logger.info('Schema exported', { schema, ...upload });
    return upload;
  } catch (error) {
    if (target.signal?.aborted || error instanceof RunCancelledError) throw error;
    logger.error('Schema export failed', { schema, key, timeTakenMs: Math.round(performance.now() - started), error: error as Error });
    throw error;
  } finally {
    await rm(deps.folder, { recursive: true, force: true });
  }
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
