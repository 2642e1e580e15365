import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { buildTar } from '../fixtures/verification/build-tarball';
import { unpackTarball } from '../fixtures/export/tarball';
import { describeSchema } from './describe-schema';

/** What the restore tests read of a target: its rows, its leftovers, its whole state, and tarballs changed after the export. */

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** Every table's rows of the schemas, as text, in order: what a reader of the target would see. */
export async function rowsOf(sql: Sql, schemas: string[]): Promise<Record<string, string[]>> {
  const tables = await sql<{ schema: string; name: string }[]>`
    SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(${schemas}::text[]) AND c.relkind IN ('r', 'p') ORDER BY 1, 2`;
  const rows: Record<string, string[]> = {};
  for (const { schema, name } of tables) {
    rows[`${schema}.${name}`] = (await sql.unsafe<{ r: string }[]>(`SELECT t::text AS r FROM ${q(schema)}.${q(name)} t ORDER BY 1`)).map((row) => row.r);
  }
  return rows;
}

/** Staging and retired schemas a restore left behind. */
export async function leftovers(sql: Sql): Promise<string[]> {
  return (await sql<{ name: string }[]>`SELECT nspname AS name FROM pg_namespace WHERE nspname LIKE 'waj\\_%' ORDER BY 1`).map((row) => row.name);
}

/** What a target holds (its schemas, their rows, the catalog of `restored`), to show a refused restore changed nothing. */
export async function stateOf(sql: Sql, restored: string[]): Promise<unknown> {
  const schemas = (await sql<{ name: string }[]>`SELECT nspname AS name FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema)' ORDER BY 1`).map((r) => r.name);
  return { schemas, rows: await rowsOf(sql, schemas), catalog: await Promise.all(restored.filter((s) => schemas.includes(s)).map((s) => describeSchema(sql, s, restored))) };
}

/** A tarball unpacked, changed, and packed again in the export's entry order (gzip, not the export's members). */
export async function rewriteTarball(tgz: Buffer, change: (entries: { name: string; content: Buffer }[]) => { name: string; content: Buffer }[]): Promise<Buffer> {
  const { folder, entries } = await unpackTarball(tgz);
  try {
    const files = await Promise.all(entries.filter((name) => !name.endsWith('/')).map(async (name) => ({ name, content: await readFile(join(folder, name)) })));
    return gzipSync(await buildTar(change(files)));
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/**
 * The next value of every sequence of the schemas (serial, identity, standalone), each from a
 * session of its own: a sequence with CACHE hands a session a batch. Advances them.
 */
export async function nextValues(url: string, schemas: string[]): Promise<Record<string, string>> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const sequences = await sql<{ name: string }[]>`
      SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) AS name FROM pg_sequences WHERE schemaname = ANY(${schemas}::text[]) ORDER BY 1`;
    const values: Record<string, string> = {};
    for (const { name } of sequences) {
      const session = postgres(url, { max: 1, onnotice: () => {} });
      try {
        values[name] = (await session.unsafe<{ v: string }[]>(`SELECT nextval('${name.replaceAll("'", "''")}'::regclass)::text AS v`))[0]!.v;
      } finally {
        await session.end();
      }
    }
    return values;
  } finally {
    await sql.end();
  }
}

/** Ends (pg_terminate_backend) the target's backend running a restore's COPY ... FROM STDIN as soon as one runs: whether it found one. */
export async function terminateCopyIn(sql: Sql, attempts = 3000): Promise<boolean> {
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const [row] = await sql<{ n: number }[]>`
      SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND state = 'active' AND query ILIKE 'COPY%FROM STDIN%' AND pid <> pg_backend_pid()`;
    if (row!.n > 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}
