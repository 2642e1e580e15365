import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import type { S3Client } from '@aws-sdk/client-s3';
import { logger } from '../logger';
import { manifestEntryName, tableEntryName } from './archive-entry-name';
import { failedStep } from './export-step-error';
import { listBaseTables } from './list-base-tables';
import { startSchemaTarball } from './schema-tarball';
import { streamTableAsCsv } from './stream-table-as-csv';

export interface TableSummary {
  table: string;
  /** The CSV's path inside the tarball, `<schema>/<table>.csv`. */
  file: string;
  rows: number;
  bytes: number;
  sha256: string;
}

export interface SchemaManifest {
  schema: string;
  exportedAt: string;
  tables: TableSummary[];
}

export interface SchemaExport {
  tables: TableSummary[];
  compressedBytes: number;
}

export interface SchemaExportTarget {
  sql: Sql;
  s3: S3Client;
  bucket: string;
  key: string;
  /** User metadata of the uploaded object (the export step sets `run-id` and `schema`). */
  metadata?: Record<string, string>;
  /** An empty folder of this run's own for the schema's temporary CSV files. */
  folder: string;
  onTableDone?: (table: TableSummary) => void;
  onTableBytes?: (bytes: number) => void;
}

/**
 * Session settings for the snapshot. Each makes the CSV the same whatever the server's or
 * database's defaults: timestamptz printed in UTC (every value carries its offset, so it loads
 * back exactly under any TimeZone), ISO dates (a 'SQL, DMY' default would print 01/02/2020),
 * intervals in the style COPY FROM reads, and floats with every digit (servers before 12 round
 * them unless extra_float_digits is raised). SET LOCAL ends with the transaction.
 */
const SNAPSHOT_SETTINGS = [
  "SET LOCAL TimeZone = 'UTC'",
  "SET LOCAL DateStyle = 'ISO, YMD'",
  "SET LOCAL IntervalStyle = 'postgres'",
  'SET LOCAL extra_float_digits = 3',
];

/**
 * Exports one schema to s3://bucket/key as a .tgz of `<schema>/<table>.csv` files and
 * `<schema>/manifest.json`, all tables read in one REPEATABLE READ snapshot.
 *
 * Each table's COPY goes to a temporary file first (tar needs an entry's size before its data);
 * the archive then reads that file into gzip and the upload while the next table's COPY runs.
 * At most one finished file waits for the archive, so the disk holds about two tables at once.
 * Throws on any failure, after aborting the upload.
 */
export async function exportSchema(schema: string, target: SchemaExportTarget): Promise<SchemaExport> {
  const { sql, s3, bucket, key, folder } = target;
  const exportedAt = new Date();
  const tarball = startSchemaTarball(s3, { bucket, key, metadata: target.metadata }, { date: exportedAt });
  const tables: TableSummary[] = [];
  try {
    await tarball.started;
    // The previous table's file being read into the archive; failures are picked up when awaited.
    let archiving: Promise<void> = Promise.resolve();
    await mkdir(folder, { recursive: true });
    await sql
      .begin('isolation level repeatable read read only', async (tx) => {
        for (const setting of SNAPSHOT_SETTINGS) await tx.unsafe(setting);
        const baseTables = await listBaseTables(tx, schema);
        if (baseTables.length === 0) throw new Error(`Schema "${schema}" has no base tables (or does not exist)`);
        for (const [index, table] of baseTables.entries()) {
          // Files are named by position: table names may hold anything a path should not.
          const path = join(folder, `${index}.csv`);
          const csv = await streamTableAsCsv(tx, schema, table, path, target.onTableBytes);
          await archiving;
          const file = tableEntryName(schema, table.name);
          archiving = tarball.addFile(path, file).then(() => rm(path));
          archiving.catch(() => {});
          const summary = { table: table.name, file, ...csv };
          tables.push(summary);
          logger.debug('Table exported', { schema, ...summary });
          target.onTableDone?.(summary);
        }
      })
      .catch((error: unknown) => {
        throw failedStep(`Reading schema "${schema}" from the database`, error);
      });
    await archiving;
    const manifest: SchemaManifest = { schema, exportedAt: exportedAt.toISOString(), tables };
    tarball.addBuffer(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), manifestEntryName(schema));
    const { compressedBytes } = await tarball.finish();
    return { tables, compressedBytes };
  } catch (error) {
    await tarball.cancel(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}
