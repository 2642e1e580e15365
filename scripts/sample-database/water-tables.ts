import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Sql } from 'postgres';

/** The DDL of the six `water` tables the time-limited job reads and writes (one file, shared by tests and the sample database). */
export const WATER_TABLES_DDL_PATH = resolve(import.meta.dirname, 'water-tables.sql');

export function readWaterTablesDdl(): string {
  return readFileSync(WATER_TABLES_DDL_PATH, 'utf8');
}

/** Creates schema `water` (if missing) and the six tables; fails if a table already exists. */
export async function createWaterTables(sql: Sql): Promise<void> {
  // Several statements in one simple-protocol query: unsafe() with no parameters sends it as is.
  await sql.unsafe(readWaterTablesDdl());
}
