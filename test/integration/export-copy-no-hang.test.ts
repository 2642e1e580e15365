import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertEveryStepSucceeded, exportThroughSteps } from '../support/export-steps';
import { openCopyOut } from '../../lib/export/open-copy-out';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';
import { connectDatabase } from '../../lib/clients/database';

// porsager/postgres#499: after a COPY TO STDOUT larger than the stream's buffer, the socket could
// stay paused and the next query on that connection never answered. Every client here has ONE
// connection, so any such stall shows up as a time-out instead of being hidden by a second one.

const TABLES = ['big_a', 'big_b', 'big_c', 'big_d'];
const ROWS_PER_TABLE = 40_000; // ~4 MB of CSV each: far beyond the 16 KiB highWaterMark and our 1 MiB chunks

let db: TestDatabase;
let oneConnection: Sql;

async function withinSeconds<T>(seconds: number, what: string, work: Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timeout = sleep(seconds * 1000, undefined, { signal: controller.signal }).then(() => {
    throw new Error(`${what} did not finish in ${seconds} s: the connection is stuck`);
  });
  timeout.catch(() => {});
  try {
    return await Promise.race([work, timeout]);
  } finally {
    controller.abort();
  }
}

beforeAll(async () => {
  db = await createTestDatabase('waj_export_499');
  await db.sql.unsafe('CREATE SCHEMA bulk');
  for (const table of TABLES) {
    await db.sql.unsafe(`CREATE TABLE bulk.${table} AS
      SELECT i AS id, repeat(md5(i::text), 3) AS filler, now() AS at FROM generate_series(1, ${ROWS_PER_TABLE}) i`);
  }
});

afterAll(async () => {
  await oneConnection?.end({ timeout: 1 });
  await db?.drop();
});

describe('COPY TO STDOUT on one connection (porsager/postgres#499)', () => {
  it('answers the next query after each large COPY, even with a slow reader', async () => {
    oneConnection = connectDatabase(db.url, { max: 1 });
    await withinSeconds(15, 'reading four large tables and then SELECT 1', (async () => {
      for (const table of TABLES) {
        const copy = await openCopyOut(oneConnection, `COPY bulk.${table} TO STDOUT (FORMAT csv, HEADER)`);
        let bytes = 0;
        for await (const chunk of copy as AsyncIterable<Buffer>) {
          bytes += chunk.length;
          await sleep(2); // slower than the socket, so the stream's buffer fills and pauses it
        }
        expect(bytes).toBeGreaterThan(4_000_000);
      }
      expect(await oneConnection`SELECT 1 AS one`).toEqual([{ one: 1 }]);
    })());
  });

  it('reports a COPY that fails at its first row as its error, never as an uncaught exception', async () => {
    // The error can arrive with the start of the COPY, before anyone listens to the stream; an
    // unlistened 'error' would end the process (and Vitest would report it as an unhandled error).
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    const sql = connectDatabase(db.url, { max: 1 });
    try {
      for (let round = 0; round < 20; round += 1) {
        const failing = sql.begin(async (tx) => {
          const copy = await openCopyOut(tx, 'COPY (SELECT 1 / (g - 1) FROM generate_series(1, 5) g) TO STDOUT (FORMAT csv, HEADER)');
          for await (const chunk of copy as AsyncIterable<Buffer>) expect(chunk.length).toBeGreaterThan(0);
        });
        await expect(failing).rejects.toThrow('division by zero');
      }
      await sleep(50);
      expect(await sql`SELECT 1 AS one`).toEqual([{ one: 1 }]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await sql.end({ timeout: 1 });
    }
    expect(uncaught).toEqual([]);
  });

  it('gives the connection back when the reader gives up half way', async () => {
    const sql = connectDatabase(db.url, { max: 1 });
    try {
      await withinSeconds(15, 'abandoning a COPY and then SELECT 1', (async () => {
        const copy = await openCopyOut(sql, 'COPY bulk.big_a TO STDOUT (FORMAT csv, HEADER)');
        for await (const chunk of copy as AsyncIterable<Buffer>) {
          expect(chunk.length).toBeGreaterThan(0);
          await sleep(20); // let the buffer fill and the socket pause before giving up
          break; // destroys the stream
        }
        expect(await sql`SELECT 1 AS one`).toEqual([{ one: 1 }]);
      })());
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('refuses a client that connectDatabase did not open, quickly, and the client goes on working', async () => {
    const plain = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await withinSeconds(10, 'a COPY on a plain client', (async () => {
        await expect(openCopyOut(plain, 'COPY bulk.big_a TO STDOUT (FORMAT csv, HEADER)')).rejects.toThrow(/opened by connectDatabase/);
        expect(await plain`SELECT 1 AS one`).toEqual([{ one: 1 }]);
      })());
    } finally {
      await plain.end({ timeout: 1 });
    }
  });

  it('exports many large tables in one transaction on one connection (and one holding the run\'s snapshot)', async () => {
    const sql = connectDatabase(db.url, { max: 2 });
    const s3: TestS3 = await startTestS3();
    const tmpRoot = await mkdtemp(join(tmpdir(), 'waj-export-tmp-'));
    try {
      const bucket = await s3.createBucket();
      const result = await withinSeconds(
        30,
        'exporting four large tables',
        exportThroughSteps({ bucket, prefix: 'export/', schemas: ['bulk'] }, { sql, s3: s3.client, tmpRoot }),
      );
      assertEveryStepSucceeded(result);
      expect(result.schemas[0]).toMatchObject({ tables: TABLES.length, rows: TABLES.length * ROWS_PER_TABLE });
      expect(await withinSeconds(5, 'SELECT 1 after the export', sql`SELECT 1 AS one`)).toEqual([{ one: 1 }]);
    } finally {
      await sql.end({ timeout: 1 });
      await s3.close();
      await rm(tmpRoot, { recursive: true, force: true });
    }
  });
});
