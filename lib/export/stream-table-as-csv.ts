import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
// ISql: a plain client or the transaction inside sql.begin.
import type { ISql } from 'postgres';
import { CsvRecordCounter } from './count-csv-records';
import type { BaseTable } from './list-base-tables';
import { openCopyOut } from './open-copy-out';
import { quoteIdentifier } from './quote-identifier';

export interface CsvFileSummary {
  /** Data rows (the header is not counted). */
  rows: number;
  bytes: number;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
}

/** PostgreSQL's own CSV: lossless (NULL is an unquoted empty field, '' a quoted one), real column names. */
export function copyTableStatement(schema: string, table: BaseTable): string {
  const source = `${quoteIdentifier(schema)}.${quoteIdentifier(table.name)}`;
  // COPY refuses a partitioned parent by name; the query form reads all its partitions' rows.
  const from = table.partitioned ? `(SELECT * FROM ${source})` : source;
  return `COPY ${from} TO STDOUT (FORMAT csv, HEADER)`;
}

/**
 * Writes one table as CSV to a new file, counting rows and bytes and hashing as the data passes,
 * so the file is read once. `onBytes` hears the running byte count for progress reports.
 */
export async function streamTableAsCsv(
  sql: ISql,
  schema: string,
  table: BaseTable,
  path: string,
  onBytes?: (bytes: number) => void,
): Promise<CsvFileSummary> {
  const hash = createHash('sha256');
  const records = new CsvRecordCounter();
  let bytes = 0;
  // 'wx': a per-run folder means the file is always new; never overwrite something else's.
  const file = await open(path, 'wx');
  try {
    const copy = await openCopyOut(sql, copyTableStatement(schema, table));
    for await (const chunk of copy as AsyncIterable<Buffer>) {
      hash.update(chunk);
      records.scan(chunk);
      bytes += chunk.length;
      // write(2) may write less than asked (e.g. a disk filling up on the last chunk, where no
      // later write would fail): finish the chunk, so the file always holds what was hashed.
      for (let written = 0; written < chunk.length; ) {
        const { bytesWritten } = await file.write(chunk, written, chunk.length - written);
        if (bytesWritten === 0) throw new Error(`Could not write to ${path}: no bytes written (disk full?)`);
        written += bytesWritten;
      }
      onBytes?.(bytes);
    }
  } finally {
    await file.close();
  }
  return { rows: Math.max(records.count - 1, 0), bytes, sha256: hash.digest('hex') };
}
