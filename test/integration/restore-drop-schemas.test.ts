/**
 * dropSchemas (lib/restore/run-statements.ts), which drops the old schemas once the new ones are
 * in place: a reader that still holds one old table and then asks for another deadlocks with the
 * DROP ... CASCADE, and the server ends the DROP. The old schemas must still go.
 */
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchemas } from '../../lib/restore/run-statements';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { waitFor } from '../support/wait-for';

let db: TestDatabase;
let reader: Sql;

beforeAll(async () => {
  db = await createTestDatabase('waj_drop_schemas');
  reader = postgres(db.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await reader?.end();
  await db?.drop();
});

const deadlocks = async (): Promise<number> => {
  const [row] = await db.sql<{ n: number }[]>`SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()`;
  return row!.n;
};

describe('dropSchemas', () => {
  it('drops the schemas after a deadlock with a reader of their tables, and the reader goes on', async () => {
    // DROP SCHEMA ... CASCADE locks old_tables.first (made first), then waits for old_tables.second.
    await db.sql.unsafe(`
      CREATE SCHEMA old_tables;
      CREATE TABLE old_tables.first (id int PRIMARY KEY);
      CREATE TABLE old_tables.second (id int REFERENCES old_tables.first)`);
    const before = await deadlocks();

    let dropping: Promise<string | undefined> | undefined;
    const reading = reader.begin(async (tx) => {
      await tx`LOCK old_tables.second IN ACCESS SHARE MODE`;
      dropping = dropSchemas(db.sql, ['old_tables']);
      await waitFor('the DROP waiting for old_tables.second', async () => {
        const [waiting] = await db.sql`
          SELECT 1 FROM pg_locks WHERE relation = 'old_tables.second'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted`;
        return waiting;
      }, { timeoutMs: 10_000, intervalMs: 20 });
      // The cycle: this reader waits for the table the DROP holds. After deadlock_timeout the
      // server ends the DROP, the first to wait; this reader then has both tables.
      await tx`LOCK old_tables.first IN ACCESS SHARE MODE`;
      return 'read';
    });

    expect(await reading).toBe('read');
    expect(await dropping).toBeUndefined();
    const [left] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'old_tables'`;
    expect(left!.n).toBe(0);
    // The deadlock did happen, and was the DROP's to retry.
    await waitFor('the deadlock counted', async () => ((await deadlocks()) > before ? true : undefined), { timeoutMs: 5_000 });
  });
});
