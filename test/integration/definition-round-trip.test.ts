import { readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyInStatement, postDataWork, preDataStatements, sequenceStatements } from '../../lib/definition/definition-statements';
import { readSchemaDefinition } from '../../lib/definition/read-schema-definition';
import type { SchemaDefinition } from '../../lib/definition/schema-definition';
import { openCopyOut } from '../../lib/export/open-copy-out';
import { quoteIdentifier as q } from '../../lib/export/quote-identifier';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { describeSchema } from '../support/describe-schema';

const SCHEMAS = ['Water Rights', 'crm'];
const FIXTURE = new URL('../fixtures/definition/rich-schemas.sql', import.meta.url);
// What the restore builds them under before renaming them to their real names.
const names = new Map([
  ['Water Rights', 'waj_restore_ab12cd_0'],
  ['crm', 'waj_restore_ab12cd_1'],
]);

let source: TestDatabase;
let target: TestDatabase;
let definitions: SchemaDefinition[];
let executed: string[];

/** Runs `statements` in order on one connection of `sql` (they set search_path for the ones after). */
async function runOnOneConnection(sql: Sql, statements: string[]): Promise<void> {
  const connection = await sql.reserve();
  try {
    for (const statement of statements) {
      executed.push(statement);
      await connection.unsafe(statement);
    }
  } finally {
    connection.release();
  }
}

/**
 * The rows of `statement` run on a connection of its own, in each database. A sequence with CACHE
 * above 1 hands a session a batch of values: the fixture's session (still in source.sql's pool)
 * holds some, so only a new session sees where the sequence stands for everyone.
 */
async function inFreshSessions(statement: string): Promise<[Record<string, unknown>[], Record<string, unknown>[]]> {
  const run = async (db: TestDatabase) => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      return [...(await sql.unsafe(statement))] as Record<string, unknown>[];
    } finally {
      await sql.end();
    }
  };
  return [await run(source), await run(target)];
}

async function copyTable(schema: string, definition: SchemaDefinition, table: SchemaDefinition['tables'][number]): Promise<void> {
  const chunks: Buffer[] = [];
  const out = await openCopyOut(source.sql, `COPY ${q(schema)}.${q(table.name)} TO STDOUT (FORMAT csv, HEADER)`);
  for await (const chunk of out) chunks.push(Buffer.from(chunk as Buffer));
  await out.copyEnded;
  const copyIn = await target.sql.unsafe(copyInStatement(definition, table, names)).writable();
  await pipeline(Readable.from([Buffer.concat(chunks)]), copyIn);
}

beforeAll(async () => {
  executed = [];
  source = await createTestDatabase('waj_def_source');
  target = await createTestDatabase('waj_def_target');
  await source.sql.unsafe(await readFile(FIXTURE, 'utf8'));

  // As the export reads them: each schema first on the path, then the others, in one snapshot.
  definitions = (await source.sql.begin('ISOLATION LEVEL REPEATABLE READ', async (tx) => {
    const read: SchemaDefinition[] = [];
    for (const schema of SCHEMAS) read.push(await readSchemaDefinition(tx, schema, [schema, ...SCHEMAS.filter((other) => other !== schema)]));
    return read;
  })) as SchemaDefinition[];

  for (const staging of names.values()) await target.sql.unsafe(`CREATE SCHEMA ${q(staging)}`);
  await runOnOneConnection(target.sql, preDataStatements(definitions, names));
  for (const definition of definitions) {
    for (const table of definition.tables) if (table.partitionKey === null) await copyTable(definition.schema, definition, table);
  }
  // Units at once, as a restore may run them: two connections of their own each.
  for (const phase of [1, 2] as const) {
    await Promise.all(postDataWork(definitions, names, phase).map((unit) => runOnOneConnection(target.sql, unit.statements)));
  }
  await runOnOneConnection(target.sql, sequenceStatements(definitions, names));
  await target.sql.begin(async (tx) => {
    for (const [real, staging] of names) await tx.unsafe(`ALTER SCHEMA ${q(staging)} RENAME TO ${q(real)}`);
  });
}, 120_000);

afterAll(async () => {
  await source?.drop();
  await target?.drop();
});

describe('a schema definition read, rebuilt under staging names and renamed', () => {
  it('left no path on the reading transaction but its own', async () => {
    const [{ path }] = (await source.sql.begin(async (tx) => {
      await tx`SELECT set_config('search_path', 'public', true)`;
      await readSchemaDefinition(tx, 'crm', ['crm']);
      return tx<{ path: string }[]>`SELECT current_setting('search_path') AS path`;
    })) as unknown as [{ path: string }];
    expect(path).toBe('public');
  });

  it.each(SCHEMAS)('rebuilds %s as the catalog describes its source', async (schema) => {
    const restored = await describeSchema(target.sql, schema);
    const original = await describeSchema(source.sql, schema);
    expect(original.tables.length).toBeGreaterThan(1);
    expect(restored).toEqual(original);
  });

  it.each(SCHEMAS)('holds the same rows in every table of %s', async (schema) => {
    const definition = definitions.find((d) => d.schema === schema)!;
    const counted: Record<string, number> = {};
    for (const table of definition.tables) {
      const select = `SELECT t::text AS r FROM ${q(schema)}.${q(table.name)} t ORDER BY 1`;
      const [before, after] = await Promise.all([source.sql.unsafe<{ r: string }[]>(select), target.sql.unsafe<{ r: string }[]>(select)]);
      expect(after.map((row) => row.r), table.name).toEqual(before.map((row) => row.r));
      counted[table.name] = after.length;
    }
    if (schema === 'Water Rights') {
      expect(counted).toEqual({
        'Audit Notes': 0,
        Licences: 3,
        'Return Lines': 4,
        readings: 4,
        'Readings 2026': 2,
        readings_2025: 2,
        events: 5,
        events_meter: 2,
        events_meter_2025: 1,
        events_meter_default: 1,
        events_other: 3,
      });
    } else {
      expect(counted).toEqual({ 'Contact Points': 4, customers: 3 });
    }
  });

  it('hands out the source next value from every sequence, serial, identity and standalone', async () => {
    const sequences = definitions.flatMap((d) => d.sequences.map((s) => `${q(d.schema)}.${q(s.name)}`));
    expect(sequences).toHaveLength(7);
    for (const sequence of sequences) {
      const [[before], [after]] = await inFreshSessions(`SELECT nextval('${sequence.replaceAll("'", "''")}'::regclass)::text AS v`);
      expect(after!.v, sequence).toBe(before!.v);
    }
  });

  it('binds defaults, identities and generated columns to the renamed schema', async () => {
    const insert = `INSERT INTO "Water Rights"."Licences" ("Holder Name", customer_id) VALUES ('New HOLDER', 3) RETURNING "Licence Id", licence_ref, search_name, status::text`;
    const [[before], [after]] = await inFreshSessions(insert);
    expect(after).toEqual(before);
    expect(after).toMatchObject({ search_name: 'new holder', status: 'draft' });
  });

  it('points foreign keys, across schemas too, at the renamed schemas', async () => {
    const keys = await target.sql<{ name: string; on: string; references: string }[]>`
      SELECT k.conname AS name, cn.nspname AS on, rn.nspname AS references
      FROM pg_constraint k
      JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
      JOIN pg_class r ON r.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
      WHERE k.conname IN ('contact_points_licence', 'Licences_customer_id_fkey')
      ORDER BY k.conname COLLATE "C"`;
    expect([...keys]).toEqual([
      { name: 'Licences_customer_id_fkey', on: 'Water Rights', references: 'crm' },
      { name: 'contact_points_licence', on: 'crm', references: 'Water Rights' },
    ]);
    // And they act: deleting a customer cascades into crm and sets Licences' key NULL across.
    await target.sql`DELETE FROM crm.customers WHERE id = 1`;
    const [row] = await target.sql`SELECT count(*)::int AS n FROM "Water Rights"."Licences" WHERE customer_id = 1`;
    expect(row!.n).toBe(0);
  });

  it('never named a schema by its real name in what it ran', () => {
    const real = executed.filter((statement) => /"Water Rights"|"crm"/.test(statement));
    expect(real).toEqual([]);
    expect(executed.length).toBeGreaterThan(20);
  });
});
