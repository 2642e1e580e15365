/**
 * dropSchemas (lib/restore/run-statements.ts), which drops the old schemas once the new ones are
 * in place. A reader whose plan was made before the swap can hold one old table and then ask for
 * another; a DROP ... CASCADE that held the second while it waited for the first would deadlock
 * with it, and the server would end one of the two (the reader's query, or the DROP, leaving the
 * old schemas behind). dropSchemas must wait for the reader without ever holding what it wants.
 */
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchemas } from '../../lib/restore/run-statements';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';

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
  it('waits for a reader that holds one table and then asks for another, without a deadlock, and then drops the schemas', async () => {
    await db.sql.unsafe(`
      CREATE SCHEMA old_tables;
      CREATE TABLE old_tables.first (id int PRIMARY KEY);
      CREATE TABLE old_tables.second (id int REFERENCES old_tables.first)`);
    const before = await deadlocks();

    let dropping: Promise<string | undefined> | undefined;
    let waitedMs = 0;
    const reading = reader.begin(async (tx) => {
      await tx`LOCK old_tables.second IN ACCESS SHARE MODE`;
      dropping = dropSchemas(db.sql, ['old_tables']);
      // A plain DROP ... CASCADE would by now hold old_tables.first and wait for old_tables.second.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const asked = Date.now();
      await tx`LOCK old_tables.first IN ACCESS SHARE MODE`;
      waitedMs = Date.now() - asked;
      return 'read';
    });

    expect(await reading).toBe('read');
    expect(await dropping).toBeUndefined();
    // The reader had its second table at once (a deadlock is only found after deadlock_timeout, 1 s).
    expect(waitedMs).toBeLessThan(500);
    expect(await deadlocks()).toBe(before);
    const [left] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'old_tables'`;
    expect(left!.n).toBe(0);
  });

  it('drops schemas whose tables refer to a table its role may only REFERENCES, not lock', async () => {
    const role = `waj_dropper_${process.pid}`;
    await db.sql.unsafe(`
      CREATE ROLE ${role} LOGIN;
      GRANT CREATE ON DATABASE "${db.name}" TO ${role};
      CREATE TABLE public.outside (id int PRIMARY KEY);
      GRANT USAGE ON SCHEMA public TO ${role};
      GRANT REFERENCES ON public.outside TO ${role}`);
    const url = new URL(db.url);
    url.username = role;
    const asRole = postgres(url.toString(), { max: 2, onnotice: () => {} });
    try {
      await asRole.unsafe(`
        CREATE SCHEMA referring;
        CREATE TABLE referring.rows (outside_id int REFERENCES public.outside)`);
      expect(await dropSchemas(asRole, ['referring'])).toBeUndefined();
      const [left] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'referring'`;
      expect(left!.n).toBe(0);
    } finally {
      await asRole.end();
      await db.sql.unsafe(`DROP TABLE public.outside; REVOKE ALL ON DATABASE "${db.name}" FROM ${role}; REVOKE ALL ON SCHEMA public FROM ${role}; DROP ROLE ${role}`);
    }
  });

  it('gives up once it has waited its time for a reader on a table, saying so, and drops nothing', async () => {
    await db.sql.unsafe(`CREATE SCHEMA held_tables; CREATE TABLE held_tables.only (id int)`);
    let outcome: string | undefined;
    await reader.begin(async (tx) => {
      await tx`LOCK held_tables.only IN ACCESS SHARE MODE`;
      const started = Date.now();
      outcome = await dropSchemas(db.sql, ['held_tables'], { waitMs: 1_000 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    });
    expect(outcome).toMatch(/could not obtain lock on relation "held_tables\.only"/);
    const [left] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'held_tables'`;
    expect(left!.n).toBe(1);
  });
});
