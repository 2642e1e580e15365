import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { migrateDatabase } from '../../scripts/migrate-database';
import { connectDatabase } from '../../lib/clients/database';

/** Server-level connection used only to create and drop the throwaway test databases. */
export const adminUrl = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** Connection string for the new database. */
  url: string;
  name: string;
  /** A postgres.js client on it (max 4 connections). */
  sql: Sql;
  /** Closes every client and drops the database. */
  drop(): Promise<void>;
}

/** Creates an empty database of its own for one test (or one test file), so tests never share rows. */
export async function createTestDatabase(prefix = 'waj_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8'`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const sql = connectDatabase(url.toString(), { max: 4 });
  return {
    url: url.toString(),
    name,
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      const dropper = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await dropper.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

/**
 * A database of its own with the project's migrations applied (jobs.runs, jobs.run_steps), as
 * `npm run migrate` leaves it; dropped again if migrating fails.
 */
export async function createMigratedTestDatabase(prefix?: string): Promise<TestDatabase> {
  const db = await createTestDatabase(prefix);
  try {
    await migrateDatabase(db.url);
    return db;
  } catch (error) {
    await db.drop();
    throw error;
  }
}
