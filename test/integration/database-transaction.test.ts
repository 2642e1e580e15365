/**
 * Transactions (lib/clients/transaction.ts) when the server ends their connection. postgres.js
 * 3.4's sql.begin crashes the process then (porsager/postgres#1208: its ROLLBACK is written to
 * the closed socket from a setImmediate); ours must fail with the cause and leave the pool usable.
 * An uncaught error anywhere in this file fails the run.
 */
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectDatabase } from '../../lib/clients/database';
import { inTransaction, isConnectionLost } from '../../lib/clients/transaction';
import { addTimeLimitedWorkflows, TIME_LIMITED_LOCK_KEY } from '../../lib/time-limited/add-time-limited-workflows';
import { createWaterTables } from '../../scripts/sample-database/water-tables';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { addLicence, NOW, SETTINGS, truncateWaterTables } from './time-limited-fixtures';

let db: TestDatabase;
let admin: Sql;

beforeAll(async () => {
  db = await createTestDatabase('waj_transaction');
  await db.sql.unsafe('CREATE TABLE notes (id int PRIMARY KEY, text text NOT NULL)');
  await createWaterTables(db.sql);
  admin = postgres(db.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await admin?.end();
  await db?.drop();
});
beforeEach(async () => {
  await db.sql`TRUNCATE notes`;
  await truncateWaterTables(db.sql);
});

/** Ends the backend whose query matches, once it is running (or waiting on a lock). */
async function terminateWhenRunning(queryLike: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const ended = await admin<{ ended: boolean }[]>`
      SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
      WHERE datname = ${db.name} AND state = 'active' AND query LIKE ${queryLike} AND pid <> pg_backend_pid()`;
    if (ended.length > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`No backend ran ${queryLike}`);
}

describe('inTransaction', () => {
  it('commits what the work did when it resolves, and rolls it back when it throws', async () => {
    const sql = connectDatabase(db.url, { max: 2 });
    try {
      await inTransaction(sql, (tx) => tx`INSERT INTO notes VALUES (1, 'kept')`);
      await expect(
        inTransaction(sql, async (tx) => {
          await tx`INSERT INTO notes VALUES (2, 'undone')`;
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      await expect(inTransaction(sql, (tx) => tx`INSERT INTO notes VALUES (1, 'duplicate')`)).rejects.toMatchObject({ code: '23505' });
      expect(await sql`SELECT id, text FROM notes ORDER BY id`).toEqual([{ id: 1, text: 'kept' }]);
      // Every connection went back to the pool: two more transactions at once still run.
      await Promise.all([inTransaction(sql, (tx) => tx`SELECT 1`), inTransaction(sql, (tx) => tx`SELECT 2`)]);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('a backend ended during the work: the transaction fails with the cause, nothing is kept, the process lives on, and the pool works after', async () => {
    const sql = connectDatabase(db.url, { max: 2 });
    try {
      const failing = inTransaction(sql, async (tx) => {
        await tx`INSERT INTO notes VALUES (3, 'lost')`;
        await tx`SELECT pg_sleep(5) AS waiting_to_be_ended`;
      });
      failing.catch(() => {});
      await terminateWhenRunning('%waiting_to_be_ended%');
      const error = await failing.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isConnectionLost(error)).toBe(true);
      // Give a stray write from a closed connection its chance to crash the process.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await sql`SELECT count(*)::int AS n FROM notes`).toEqual([{ n: 0 }]);
      await inTransaction(sql, (tx) => tx`INSERT INTO notes VALUES (4, 'after')`);
      expect(await sql`SELECT id FROM notes`).toEqual([{ id: 4 }]);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

describe('the time-limited job when the server ends its connection', () => {
  it('fails with the cause, adds nothing, and the next run on the same pool adds the rows', async () => {
    await addLicence(db.sql);
    const sql = connectDatabase(db.url, { max: 2 });
    const holder = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      // Another run holds the job's lock, so this one waits inside its transaction: ended there.
      let holding!: () => void;
      const held = new Promise<void>((resolve) => (holding = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const other = holder.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${TIME_LIMITED_LOCK_KEY.toString()}::bigint)`;
        holding();
        await gate;
      });
      await held;
      const run = addTimeLimitedWorkflows(sql, SETTINGS, NOW);
      run.catch(() => {});
      await terminateWhenRunning('%pg_advisory_xact_lock%');
      release();
      await other;
      await expect(run).rejects.toSatisfy(isConnectionLost);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await db.sql`SELECT count(*)::int AS n FROM water.charge_version_workflows`).toEqual([{ n: 0 }]);
      expect((await addTimeLimitedWorkflows(sql, SETTINGS, NOW)).count).toBe(1);
    } finally {
      await holder.end({ timeout: 1 });
      await sql.end({ timeout: 1 });
    }
  });
});
