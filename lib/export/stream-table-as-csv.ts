import { createHash } from 'node:crypto';
// ISql: a plain client, a reserved connection or a transaction.
import type { ISql } from 'postgres';
import { gzipInBlocks } from './gzip-in-blocks';
import type { BaseTable } from './list-base-tables';
import { BlockPool } from './block-pool';
import { COPY_CHUNK_BYTES, openCopyOut } from './open-copy-out';
import { quoteIdentifier } from './quote-identifier';

export interface CsvSummary {
  /** Data rows (the header is not counted). */
  rows: number;
  /** Size of the CSV, uncompressed. */
  bytes: number;
  /** Hex SHA-256 of the CSV's bytes, uncompressed. */
  sha256: string;
  /** Size of the gzip members written. */
  compressedBytes: number;
}

/** PostgreSQL's own CSV: lossless (NULL is an unquoted empty field, '' a quoted one), real column names. */
export function copyTableStatement(schema: string, table: BaseTable): string {
  const source = `${quoteIdentifier(schema)}.${quoteIdentifier(table.name)}`;
  // COPY refuses a partitioned parent by name; the query form reads all its partitions' rows.
  const from = table.partitioned ? `(SELECT * FROM ${source})` : source;
  return `COPY ${from} TO STDOUT (FORMAT csv, HEADER)`;
}

/**
 * Streams one table's CSV, compressed, to `write` as gzip members (see gzipInBlocks), counting
 * rows and bytes and hashing the uncompressed CSV as it passes: no uncompressed copy is ever
 * staged. `write` applies back-pressure (the COPY waits while it does); `onBytes` hears the
 * running CSV byte count for progress reports; `signal` cancels the COPY.
 */
export async function streamTableAsCsv(
  sql: ISql,
  schema: string,
  table: BaseTable,
  write: (compressed: Buffer) => Promise<void>,
  { onBytes, signal, blocksInFlight }: { onBytes?: (bytes: number) => void; signal?: AbortSignal; blocksInFlight?: number } = {},
): Promise<CsvSummary> {
  const hash = createHash('sha256');
  let bytes = 0;
  let compressedBytes = 0;
  const blocks = new BlockPool(COPY_CHUNK_BYTES);
  const copy = await openCopyOut(sql, copyTableStatement(schema, table), { signal, blocks });
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of copy as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      onBytes?.(bytes);
      yield chunk;
    }
  }
  try {
    for await (const member of gzipInBlocks(counted(), { blocksInFlight, onCompressed: (block) => blocks.give(block) })) {
      for (const piece of member) {
        compressedBytes += piece.length;
        await write(piece);
      }
    }
  } finally {
    copy.destroy();
    // Until then postgres.js refuses the connection's next statement (ROLLBACK, the next COPY).
    await copy.copyEnded;
  }
  // The header line is a CopyData message of its own.
  return { rows: Math.max(copy.rowsCounted() - 1, 0), bytes, sha256: hash.digest('hex'), compressedBytes };
}
