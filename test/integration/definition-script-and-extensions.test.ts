import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postDataWork, preDataStatements } from '../../lib/definition/definition-statements';
import { findMissingExtensions } from '../../lib/definition/find-missing-extensions';
import { readSchemaDefinition } from '../../lib/definition/read-schema-definition';
import { renderSchemaSql } from '../../lib/definition/render-schema-sql';
import type { SchemaDefinition } from '../../lib/definition/schema-definition';
import { tableEntryName } from '../../lib/export/archive-entry-name';
import { openCopyOut } from '../../lib/export/open-copy-out';
import { quoteIdentifier as q } from '../../lib/export/quote-identifier';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { describeSchema } from '../support/describe-schema';

const run = promisify(execFile);
const FIXTURE = new URL('../fixtures/definition/rich-schemas.sql', import.meta.url);
const databases: TestDatabase[] = [];
let folder: string;

async function database(prefix: string): Promise<TestDatabase> {
  const db = await createTestDatabase(prefix);
  databases.push(db);
  return db;
}

async function readDefinition(db: TestDatabase, schema: string, searchPath: string[]): Promise<SchemaDefinition> {
  return (await db.sql.begin('ISOLATION LEVEL REPEATABLE READ', (tx) => readSchemaDefinition(tx, schema, searchPath))) as SchemaDefinition;
}

/** One value from a connection of its own (see the round-trip test: sequences with CACHE). */
async function freshValue(db: TestDatabase, statement: string): Promise<unknown> {
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    return Object.values((await sql.unsafe(statement))[0]!)[0];
  } finally {
    await sql.end();
  }
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'waj-schema-sql-'));
});

afterAll(async () => {
  for (const db of databases) await db.drop();
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe('renderSchemaSql', () => {
  it('is a psql script that rebuilds the schema, rows loaded by its \\copy lines, as its source', async () => {
    const source = await database('waj_def_script_src');
    await source.sql.unsafe(await readFile(FIXTURE, 'utf8'));
    const definition = await readDefinition(source, 'Water Rights', ['Water Rights', 'crm']);
    const script = renderSchemaSql(definition);
    expect(script).toMatch(/^-- Schema "Water Rights", definition format 1, printed by PostgreSQL \d+\./);
    expect(script).toContain(`-- \\copy "Water Rights"."Licences" ("Licence Id", "licence_ref",`);

    // The tarball's CSVs as the export writes them, where the script's \copy lines look.
    for (const table of definition.tables.filter((t) => t.partitionKey === null)) {
      const out = await openCopyOut(source.sql, `COPY "Water Rights".${q(table.name)} TO STDOUT (FORMAT csv, HEADER)`);
      const chunks: Buffer[] = [];
      for await (const chunk of out) chunks.push(Buffer.from(chunk as Buffer));
      await out.copyEnded;
      const file = join(folder, tableEntryName('Water Rights', table.name));
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, Buffer.concat(chunks));
    }
    await writeFile(join(folder, 'schema.sql'), script.replaceAll('\n-- \\copy ', '\n\\copy '));

    // What its foreign key to the other schema needs there.
    const target = await database('waj_def_script_dst');
    await target.sql.unsafe('CREATE SCHEMA crm; CREATE TABLE crm.customers (id integer PRIMARY KEY); INSERT INTO crm.customers VALUES (1), (2), (3)');
    await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', target.url, '-f', 'schema.sql'], { cwd: folder });

    expect(await describeSchema(target.sql, 'Water Rights')).toEqual(await describeSchema(source.sql, 'Water Rights'));
    for (const table of ['Licences', 'Return Lines', 'readings', 'Audit Notes']) {
      const select = `SELECT t::text AS r FROM "Water Rights".${q(table)} t ORDER BY 1`;
      expect((await target.sql.unsafe(select)).map((row) => row.r as string), table).toEqual((await source.sql.unsafe(select)).map((row) => row.r as string));
    }
    for (const sequence of definition.sequences) {
      const next = `SELECT nextval('"Water Rights".${q(sequence.name).replaceAll("'", "''")}'::regclass)::text`;
      expect(await freshValue(target, next), sequence.name).toBe(await freshValue(source, next));
    }
  });
});

describe('extension uses', () => {
  let source: TestDatabase;
  let definition: SchemaDefinition;

  beforeAll(async () => {
    source = await database('waj_def_ext_src');
    await source.sql.unsafe(`
      CREATE EXTENSION citext SCHEMA public;
      CREATE SCHEMA people;
      CREATE DOMAIN people.email AS public.citext CHECK (VALUE LIKE '%@%');
      CREATE TYPE people.contact AS (address public.citext, note text);
      CREATE TABLE people.people (id integer PRIMARY KEY, "Email" public.citext UNIQUE, aliases public.citext[], work people.email, contact people.contact);
      INSERT INTO people.people VALUES (1, 'A@Example.com', '{a,B}', 'w@x', ROW('Here', NULL));
    `);
    definition = await readDefinition(source, 'people', ['people']);
  });

  it('names every column, attribute and domain built on an extension type, and its schema', () => {
    expect(definition.extensions).toEqual([
      {
        name: 'citext',
        schema: 'public',
        usedBy: [
          'attribute address of type contact (public.citext)',
          'column "Email" of table people (public.citext)',
          'column aliases of table people (public.citext)',
          'domain email (public.citext)',
        ],
      },
    ]);
    // Off the path, the extension's type is printed with its schema: the target must have it there.
    expect(definition.tables[0]!.columns.find((c) => c.name === 'aliases')!.type).toBe('public.citext[]');
  });

  it('finds it missing, then in another schema than the texts name, then as it should be', async () => {
    const target = await database('waj_def_ext_dst');
    const usedBy = definition.extensions[0]!.usedBy.map((what) => `"people": ${what}`);
    expect(await findMissingExtensions(target.sql, [definition])).toEqual([{ extension: 'citext', schema: 'public', usedBy, installedIn: null }]);
    await target.sql.unsafe('CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext');
    expect(await findMissingExtensions(target.sql, [definition])).toEqual([{ extension: 'citext', schema: 'public', usedBy, installedIn: 'ext' }]);
    await target.sql.unsafe('DROP EXTENSION citext; CREATE EXTENSION citext SCHEMA public');
    expect(await findMissingExtensions(target.sql, [definition])).toEqual([]);

    // And then the definition builds there.
    const names = new Map([['people', 'waj_restore_ext_0']]);
    await target.sql.unsafe('CREATE SCHEMA waj_restore_ext_0');
    const connection = await target.sql.reserve();
    try {
      for (const statement of [...preDataStatements([definition], names), ...postDataWork([definition], names, 1).flatMap((u) => u.statements)]) {
        await connection.unsafe(statement);
      }
    } finally {
      connection.release();
    }
    await target.sql`ALTER SCHEMA waj_restore_ext_0 RENAME TO people`;
    expect(await describeSchema(target.sql, 'people')).toEqual(await describeSchema(source.sql, 'people'));
  });

  it('finds nothing missing when nothing is used', async () => {
    expect(await findMissingExtensions(source.sql, [{ ...definition, extensions: [] }])).toEqual([]);
  });
});

describe('a role that cannot read a sequence', () => {
  it('leaves the definition unavailable, naming the sequence and the grant (the rows can still be exported); with the grant, it is read', async () => {
    const db = await database('waj_def_seq_grant');
    const role = `waj_def_${randomBytes(4).toString('hex')}`;
    await db.sql.unsafe(`
      CREATE SCHEMA ledger;
      CREATE TABLE ledger.entries (id serial PRIMARY KEY, note text);
      CREATE SEQUENCE ledger."Other seq";
      CREATE ROLE ${role} LOGIN;
      GRANT USAGE ON SCHEMA ledger TO ${role};
      GRANT SELECT ON ALL TABLES IN SCHEMA ledger TO ${role};
      GRANT SELECT ON SEQUENCE ledger.entries_id_seq TO ${role};`);
    const url = new URL(db.url);
    url.username = role;
    const asRole = postgres(url.toString(), { max: 1, onnotice: () => {} });
    try {
      const unavailable = (await asRole.begin('ISOLATION LEVEL REPEATABLE READ', (tx) => readSchemaDefinition(tx, 'ledger', ['ledger']))) as SchemaDefinition;
      expect(unavailable.unavailable).toMatch(new RegExp(`^The export's database role "${role}" cannot read sequence "ledger"\\."Other seq": grant it SELECT on it`));
      expect([unavailable.tables, unavailable.sequences, unavailable.types]).toEqual([[], [], []]);
      await db.sql.unsafe(`GRANT SELECT ON SEQUENCE ledger."Other seq" TO ${role}`);
      const definition = (await asRole.begin('ISOLATION LEVEL REPEATABLE READ', (tx) => readSchemaDefinition(tx, 'ledger', ['ledger']))) as SchemaDefinition;
      expect(definition.sequences.map((s) => s.name)).toEqual(['Other seq', 'entries_id_seq']);
    } finally {
      await asRole.end();
      await db.sql.unsafe(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });
});
