import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertEveryStepSucceeded, exportThroughSteps } from '../support/export-steps';
import type { ExportedThroughSteps } from '../support/export-steps';
import type { SchemaManifest } from '../../lib/export/export-schema';
import { quoteIdentifier as q } from '../../lib/export/quote-identifier';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';
import { AWKWARD_SCHEMA, awkwardTableDefinitions, createAwkwardTables, seedAwkwardSchema } from '../fixtures/export/awkward-schema';
import { downloadObject, loadCsv, unpackTarball } from '../fixtures/export/tarball';
import { connectDatabase } from '../../lib/clients/database';

const PLAIN_SCHEMA = 'plain';
const RESTORED_SCHEMA = 'Restored "Copy" Ω';

let db: TestDatabase;
let s3: TestS3;
let bucket: string;
let tmpRoot: string;
let exportSql: Sql;
let result: ExportedThroughSteps;
const unpacked = new Map<string, { folder: string; entries: string[]; manifest: SchemaManifest }>();

beforeAll(async () => {
  db = await createTestDatabase('waj_export_rt');
  await seedAwkwardSchema(db.sql);
  await db.sql.unsafe(`CREATE SCHEMA ${PLAIN_SCHEMA}; CREATE TABLE ${PLAIN_SCHEMA}.licences (licence_id uuid PRIMARY KEY, licence_ref text NOT NULL)`);
  await db.sql.unsafe(`INSERT INTO ${PLAIN_SCHEMA}.licences SELECT md5(i::text)::uuid, 'AN/' || i FROM generate_series(1, 2000) i`);
  // Defaults that would make a naive export lossy or unreadable elsewhere: the export must not depend on them.
  await db.sql.unsafe(`ALTER DATABASE ${q(db.name)} SET TimeZone = 'Europe/London'`);
  await db.sql.unsafe(`ALTER DATABASE ${q(db.name)} SET DateStyle = 'SQL, DMY'`);
  await db.sql.unsafe(`ALTER DATABASE ${q(db.name)} SET IntervalStyle = 'sql_standard'`);
  await db.sql.unsafe(`ALTER DATABASE ${q(db.name)} SET extra_float_digits = 0`);
  exportSql = connectDatabase(db.url, { max: 2 });

  s3 = await startTestS3();
  bucket = await s3.createBucket();
  tmpRoot = await mkdtemp(join(tmpdir(), 'waj-export-tmp-'));
  result = await exportThroughSteps({ bucket, prefix: 'export/', schemas: [AWKWARD_SCHEMA, PLAIN_SCHEMA] }, { sql: exportSql, s3: s3.client, tmpRoot });

  for (const schema of [AWKWARD_SCHEMA, PLAIN_SCHEMA]) {
    const { folder, entries } = await unpackTarball(await downloadObject(s3.client, bucket, `export/${schema}.tgz`));
    const manifest = JSON.parse(await readFile(join(folder, schema, 'manifest.json'), 'utf8')) as SchemaManifest;
    unpacked.set(schema, { folder, entries, manifest });
  }
});

afterAll(async () => {
  await exportSql?.end();
  await db?.drop();
  await s3?.close();
  if (tmpRoot) await rm(tmpRoot, { recursive: true, force: true });
  for (const { folder } of unpacked.values()) await rm(folder, { recursive: true, force: true });
});

function unpackedOf(schema: string) {
  const found = unpacked.get(schema);
  if (!found) throw new Error(`${schema} was not unpacked`);
  return found;
}

describe('the export steps round trip', () => {
  it('exports every schema and reports what it wrote', () => {
    expect(() => assertEveryStepSucceeded(result)).not.toThrow();
    expect(result.schemas.map(({ schema, status, key, tables }) => ({ schema, status, key, tables }))).toEqual([
      { schema: AWKWARD_SCHEMA, status: 'succeeded', key: `export/${AWKWARD_SCHEMA}.tgz`, tables: 6 },
      { schema: PLAIN_SCHEMA, status: 'succeeded', key: 'export/plain.tgz', tables: 1 },
    ]);
    expect(result.schemas[1]).toMatchObject({ rows: 2000 });
  });

  it('holds the definition, one CSV per base table and the manifest, under the schema folder only; no view', () => {
    const { entries, manifest } = unpackedOf(AWKWARD_SCHEMA);
    expect(manifest.tables.map((table) => table.table)).toEqual(
      ['Odd "Table" Name', 'Tåble ünïcode', 'dotted.table', 'empty_table', 'slash/and\\back', 'typed_values'],
    );
    expect(entries.sort()).toEqual(
      [
        `${AWKWARD_SCHEMA}/Odd "Table" Name.csv`,
        `${AWKWARD_SCHEMA}/Tåble ünïcode.csv`,
        `${AWKWARD_SCHEMA}/dotted.table.csv`,
        `${AWKWARD_SCHEMA}/definition.json`,
        `${AWKWARD_SCHEMA}/empty_table.csv`,
        `${AWKWARD_SCHEMA}/manifest.json`,
        `${AWKWARD_SCHEMA}/schema.sql`,
        `${AWKWARD_SCHEMA}/slash%2Fand%5Cback.csv`,
        `${AWKWARD_SCHEMA}/typed_values.csv`,
      ].sort(),
    );
    expect(manifest.tables.map((table) => table.file).sort()).toEqual(entries.filter((e) => e.endsWith('.csv')).sort());
  });

  it('writes a manifest whose counts and checksums match the files and the tables', async () => {
    for (const schema of [AWKWARD_SCHEMA, PLAIN_SCHEMA]) {
      const { folder, manifest } = unpackedOf(schema);
      expect(manifest.schema).toBe(schema);
      expect(new Date(manifest.exportedAt).toISOString()).toBe(manifest.exportedAt);
      for (const table of manifest.tables) {
        const content = await readFile(join(folder, table.file));
        expect(table.bytes, table.file).toBe(content.length);
        expect(table.sha256, table.file).toBe(createHash('sha256').update(content).digest('hex'));
        const [{ count }] = await db.sql.unsafe<[{ count: number }]>(`SELECT count(*)::int AS count FROM ${q(schema)}.${q(table.table)}`);
        expect(table.rows, table.file).toBe(count);
      }
    }
  });

  it('uses the real column names in the header', async () => {
    const { folder } = unpackedOf(AWKWARD_SCHEMA);
    const csv = await readFile(join(folder, AWKWARD_SCHEMA, 'typed_values.csv'), 'utf8');
    expect(csv.split('\n')[0]).toBe(
      'id,label,short,padded,whole,exact,approx,small_approx,flag,day,local_time,instant,clock,span,ident,doc,raw_json,blob,tags,grid,"Column ""Quoted"" Ünï"',
    );
    expect(await readFile(join(folder, AWKWARD_SCHEMA, 'empty_table.csv'), 'utf8')).toBe('id,note\n');
  });

  it('loads back with COPY FROM into identical rows, under other session settings', async () => {
    const { folder, manifest } = unpackedOf(AWKWARD_SCHEMA);
    // A loader whose session settings differ from the source database's on every axis that matters.
    const loader = postgres(db.url, {
      max: 1,
      onnotice: () => {},
      connection: { TimeZone: 'America/New_York', DateStyle: 'ISO, MDY', IntervalStyle: 'postgres', extra_float_digits: 3 },
    });
    try {
      await createAwkwardTables(loader, RESTORED_SCHEMA);
      for (const table of manifest.tables) {
        await loadCsv(loader, `${q(RESTORED_SCHEMA)}.${q(table.table)}`, join(folder, table.file));
      }
      for (const table of Object.keys(awkwardTableDefinitions(AWKWARD_SCHEMA))) {
        // Whole rows as text, with every float digit; same session for both sides.
        const rowsOf = async (schema: string) => {
          const [{ rows }] = await loader.unsafe<[{ rows: string[] }]>(
            `SELECT coalesce(array_agg(t::text ORDER BY t::text), '{}') AS rows FROM ${q(schema)}.${q(table)} t`,
          );
          return rows;
        };
        const source = await rowsOf(AWKWARD_SCHEMA);
        expect(await rowsOf(RESTORED_SCHEMA), table).toEqual(source);
        expect(source.length, table).toBe(manifest.tables.find((t) => t.table === table)?.rows);
      }
      const [{ differences }] = await loader.unsafe<[{ differences: number }]>(`
        SELECT count(*)::int AS differences FROM (
          (SELECT id, label, short, padded, whole, exact, approx, small_approx, flag, day, local_time, instant, clock, span, ident, doc, blob, tags, grid
             FROM ${q(AWKWARD_SCHEMA)}.typed_values
           EXCEPT ALL
           SELECT id, label, short, padded, whole, exact, approx, small_approx, flag, day, local_time, instant, clock, span, ident, doc, blob, tags, grid
             FROM ${q(RESTORED_SCHEMA)}.typed_values)
          UNION ALL
          (SELECT id, label, short, padded, whole, exact, approx, small_approx, flag, day, local_time, instant, clock, span, ident, doc, blob, tags, grid
             FROM ${q(RESTORED_SCHEMA)}.typed_values
           EXCEPT ALL
           SELECT id, label, short, padded, whole, exact, approx, small_approx, flag, day, local_time, instant, clock, span, ident, doc, blob, tags, grid
             FROM ${q(AWKWARD_SCHEMA)}.typed_values)
        ) d`);
      expect(differences).toBe(0);
    } finally {
      await loader.end();
    }
  });

  it('leaves no temporary files behind', async () => {
    expect(await readdir(tmpRoot)).toEqual([]);
  });
});
