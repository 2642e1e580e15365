import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { describeSchema } from '../support/describe-schema';
import { exportThroughJob } from '../support/export-through-job';
import { startTestS3 } from '../support/s3';
import { readExportTarball } from '../../lib/verification/read-export-tarball';
import type { TestS3 } from '../support/s3';
import { leftovers, nextValues, terminateCopyIn, rewriteTarball, rowsOf as rowsOfSchemas, stateOf as stateOfSchemas } from '../support/restore-checks';

/**
 * `npm run restore` (issue "Tarballs that rebuild their schemas"), as a person runs it, on
 * tarballs made by the real export job: the round trip, the replacement in front of a reader, and
 * each refusal leaving the target as it was.
 */

const run = promisify(execFile);
const SCHEMAS = ['Water Rights', 'crm'];
const FIXTURE = new URL('../fixtures/definition/rich-schemas.sql', import.meta.url);
const rowsOf = (sql: Sql, schemas: string[] = SCHEMAS) => rowsOfSchemas(sql, schemas);
const stateOf = (sql: Sql) => stateOfSchemas(sql, SCHEMAS);

let source: TestDatabase;
let s3: TestS3;
let bucket: string;
let work: string;
const databases: TestDatabase[] = [];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npm run restore -- <args>` (its script, bundled and run by node, as npm would): exit code and output. */
async function restore(args: string[], env: Record<string, string | undefined> = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/run-bundled.mjs', 'scripts/restore.ts', ...args], {
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: source.url, S3_ENDPOINT: s3.endpoint, ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout: string; stderr: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function emptyTarget(): Promise<TestDatabase> {
  const db = await createTestDatabase('waj_restore_target');
  databases.push(db);
  return db;
}

let firstExport: string;
let targetA: TestDatabase;

beforeAll(async () => {
  source = await createMigratedTestDatabase('waj_restore_source');
  await source.sql.unsafe(await readFile(FIXTURE, 'utf8'));
  s3 = await startTestS3();
  bucket = await s3.createBucket();
  work = await mkdtemp(join(tmpdir(), 'waj-restore-test-'));
  firstExport = join(work, 'first');
  await exportThroughJob(source, s3.client, bucket, SCHEMAS, firstExport);
}, 120_000);

afterAll(async () => {
  for (const db of databases) await db.drop().catch(() => {});
  await s3?.close();
  await source?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('npm run restore', () => {
  it('round trip: into an empty database, the catalog, every row and every next value are the source’s', async () => {
    targetA = await emptyTarget();
    const outcome = await restore([firstExport, '--into', targetA.url]);
    expect(outcome.stderr).toBe('');
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toMatch(/restored Water Rights: 11 tables, 16 rows/);
    expect(outcome.stdout).toMatch(/restored crm: 2 tables, 7 rows/);
    expect(outcome.stdout).toMatch(/loaded crm\.customers: 3 rows/);

    for (const schema of SCHEMAS) {
      const restored = await describeSchema(targetA.sql, schema, SCHEMAS);
      expect(restored.tables.length).toBeGreaterThan(1);
      expect(restored).toEqual(await describeSchema(source.sql, schema, SCHEMAS));
    }
    const rows = await rowsOf(targetA.sql);
    expect(rows).toEqual(await rowsOf(source.sql));
    expect(rows['crm.customers']).toHaveLength(3);
    expect(rows['Water Rights.Audit Notes']).toEqual([]);

    // The next value of every sequence (serial, identity, standalone), each from a new session.
    const next = await nextValues(targetA.url, SCHEMAS);
    expect(Object.keys(next)).toHaveLength(7);
    expect(next).toEqual(await nextValues(source.url, SCHEMAS));
    // ANALYZE ran on every table: plain ones (with keys and indexes or none, such as the empty
    // Audit Notes) in their units, partitioned ones and their partitions after.
    const notAnalyzed = await targetA.sql<{ name: string }[]>`
      SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ${targetA.sql(SCHEMAS)} AND c.relkind IN ('r', 'p')
        AND NOT EXISTS (SELECT 1 FROM pg_stat_user_tables s WHERE s.relid = c.oid AND s.last_analyze IS NOT NULL)
        AND NOT EXISTS (SELECT 1 FROM pg_statistic st WHERE st.starelid = c.oid)`;
    expect(notAnalyzed).toEqual([]);
    expect(await leftovers(targetA.sql)).toEqual([]);
  });

  it('from the S3 prefix the export wrote: plain lines for a person (what, each table, each phase, a summary), no JSON log line, no AWS SDK warning', async () => {
    const target = await emptyTarget();
    const outcome = await restore([`s3://${bucket}/export/`, '--into', target.url]);
    expect(outcome.stderr).toBe('');
    expect(outcome.code).toBe(0);
    const lines = outcome.stdout.trim().split('\n');
    expect(lines.filter((line) => line.trimStart().startsWith('{'))).toEqual([]);
    expect(lines[0]).toMatch(/^Restoring (crm \(2 tables\), Water Rights \(11 tables\)|Water Rights \(11 tables\), crm \(2 tables\))$/);
    expect(lines).toContain('Replacing the schemas in one transaction...');
    expect(lines.at(-1)).toMatch(/^Done in .*: every table matched its manifest/);
    expect(await rowsOf(target.sql)).toEqual(await rowsOf(source.sql));
  });

  it('a newer export over an older restore: a reader of two tables of different schemas sees the old pair or the new pair, never a mix or an error', async () => {
    await source.sql.unsafe(`
      INSERT INTO crm.customers (name) VALUES ('Newer Customer');
      INSERT INTO "Water Rights"."Licences" ("Holder Name") VALUES ('Newer Holder');`);
    const secondExport = join(work, 'second');
    await exportThroughJob(source, s3.client, bucket, SCHEMAS, secondExport);

    const reader = postgres(targetA.url, { max: 1, onnotice: () => {} });
    const seen = new Map<string, number>();
    const errors: string[] = [];
    let reading = true;
    const loop = (async () => {
      while (reading) {
        try {
          const [row] = await reader<{ pair: string }[]>`
            SELECT (SELECT count(*) FROM crm.customers) || '/' || (SELECT count(*) FROM "Water Rights"."Licences") AS pair`;
          seen.set(row!.pair, (seen.get(row!.pair) ?? 0) + 1);
        } catch (error) {
          errors.push((error as Error).message);
        }
      }
    })();
    let outcome: Outcome;
    try {
      outcome = await restore([secondExport, '--into', targetA.url]);
    } finally {
      reading = false;
      await loop;
      await reader.end();
    }
    expect(outcome.stderr).toBe('');
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toMatch(/replaced the one that was there/);
    expect(errors).toEqual([]);
    expect([...seen.keys()].sort()).toEqual(['3/3', '4/4']);
    expect(seen.get('3/3')).toBeGreaterThan(10);
    expect(await rowsOf(targetA.sql)).toEqual(await rowsOf(source.sql));
    // The old schemas dropped, even when a read of them deadlocked with the DROP (its output says if not).
    expect(await leftovers(targetA.sql), outcome.stdout).toEqual([]);
  });

  describe('refusals leave the target exactly as it was', () => {
    let before: unknown;
    let latest: string;

    beforeAll(async () => {
      latest = join(work, 'second');
      before = await stateOf(targetA.sql);
    });

    async function refusedWith(folder: string, pattern: RegExp, code = 1, env: Record<string, string | undefined> = {}): Promise<void> {
      const outcome = await restore([folder, '--into', targetA.url], env);
      expect(outcome.stderr).toMatch(pattern);
      expect(outcome.stderr).toMatch(/Nothing was replaced/);
      expect(outcome.code).toBe(code);
      expect(await stateOf(targetA.sql)).toEqual(before);
      expect(await leftovers(targetA.sql)).toEqual([]);
    }

    /** The latest export's folder with one tarball replaced. */
    async function withTarball(name: string, schema: string, tgz: Buffer): Promise<string> {
      const folder = join(work, name);
      await mkdir(folder, { recursive: true });
      await cp(latest, folder, { recursive: true });
      await writeFile(join(folder, `${schema}.tgz`), tgz);
      return folder;
    }

    it('one value changed in one CSV, the archive rebuilt, the manifest kept: exit 1 naming the table', async () => {
      const tgz = await rewriteTarball(await readFile(join(latest, 'crm.tgz')), (entries) =>
        entries.map((entry) => (entry.name === 'crm/customers.csv' ? { ...entry, content: Buffer.from(entry.content.toString().replace('Anglian Farms', 'Anglian Farmz')) } : entry)),
      );
      await refusedWith(await withTarball('changed', 'crm', tgz), /crm.*table "customers".*sha256 expected/);
    });

    it('a CSV changed so that two rows share a key, the manifest kept: exit 1 for its checksum, not for the key a reader built while others loaded', async () => {
      const tgz = await rewriteTarball(await readFile(join(latest, 'crm.tgz')), (entries) =>
        entries.map((entry) => (entry.name === 'crm/customers.csv' ? { ...entry, content: Buffer.from(entry.content.toString().replace(/^2,/m, '1,')) } : entry)),
      );
      await refusedWith(await withTarball('duplicate-key', 'crm', tgz), /crm.*table "customers".*sha256 expected/);
    });

    it('a manifest that says a table has one row more than its CSV (the CSV kept): exit 1 naming the table and both counts (the COPY counts the rows)', async () => {
      const tgz = await rewriteTarball(await readFile(join(latest, 'crm.tgz')), (entries) =>
        entries.map((entry) => {
          if (entry.name !== 'crm/manifest.json') return entry;
          const manifest = JSON.parse(entry.content.toString()) as { tables: { table: string; rows: number }[] };
          for (const table of manifest.tables) if (table.table === 'customers') table.rows += 1;
          return { ...entry, content: Buffer.from(JSON.stringify(manifest)) };
        }),
      );
      await refusedWith(await withTarball('rows', 'crm', tgz), /crm.*table "customers".*rows expected 5, found 4/);
    });

    it('a truncated tarball: exit 1 saying so', async () => {
      const whole = await readFile(join(latest, 'Water Rights.tgz'));
      await refusedWith(await withTarball('truncated', 'Water Rights', whole.subarray(0, Math.floor(whole.length * 0.6))), /Water Rights\.tgz: Truncated/);
    });

    it('a tarball without a definition (an export made before this change): exit 1 saying why', async () => {
      const tgz = await rewriteTarball(await readFile(join(latest, 'crm.tgz')), (entries) =>
        entries
          .filter((entry) => !/\/(definition\.json|schema\.sql)$/.test(entry.name))
          .map((entry) => {
            if (!entry.name.endsWith('/manifest.json')) return entry;
            const manifest = JSON.parse(entry.content.toString()) as Record<string, unknown>;
            delete manifest.definitionFiles;
            return { ...entry, content: Buffer.from(JSON.stringify(manifest)) };
          }),
      );
      await refusedWith(await withTarball('no-definition', 'crm', tgz), /crm\.tgz: has no definition\.json .*made before export tarballs carried/);
    });

    it('into the database the export reads (DATABASE_URL): refused, saying why', async () => {
      await refusedWith(latest, /the database the export reads \(DATABASE_URL\)/, 1, { DATABASE_URL: targetA.url });
    });

    it('an unreachable target, an unreadable source and bad arguments: exit 2, one line each', async () => {
      const unreachable = await restore([latest, '--into', 'postgres://postgres@127.0.0.1:1/nowhere']);
      expect(unreachable.code).toBe(2);
      expect(unreachable.stderr).toMatch(/cannot run: Cannot connect to the target 127\.0\.0\.1:1\/nowhere/);
      const missing = await restore([join(work, 'no-such-folder'), '--into', targetA.url]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/no-such-folder: cannot be read \(no such file or folder\)/);
      const noTarget = await restore([latest]);
      expect(noTarget.code).toBe(2);
      expect(noTarget.stderr).toMatch(/--into is missing/);
      const unknownSchema = await restore([latest, '--into', targetA.url, '--schemas', 'nope']);
      expect(unknownSchema.code).toBe(2);
      expect(unknownSchema.stderr).toMatch(/No tarball holds "nope"/);
      expect(await stateOf(targetA.sql)).toEqual(before);
    });
  });

  it('a target that lacks an extension the definition needs: exit 1 naming it and what needs it; nothing created', async () => {
    const db = await createMigratedTestDatabase('waj_restore_ext');
    databases.push(db);
    await db.sql.unsafe(`CREATE EXTENSION citext; CREATE SCHEMA people; CREATE TABLE people.contacts (id int PRIMARY KEY, email citext); INSERT INTO people.contacts VALUES (1, 'A@Example.com')`);
    const folder = join(work, 'ext');
    await exportThroughJob(db, s3.client, bucket, ['people'], folder);
    const target = await emptyTarget();
    const outcome = await restore([folder, '--into', target.url]);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/lacks the extension citext .*contacts.*CREATE EXTENSION citext/);
    expect(await stateOf(target.sql)).toEqual({ schemas: ['public'], rows: {}, catalog: [] });

    // With the extension, the same tarball restores.
    await target.sql`CREATE EXTENSION citext`;
    const restored = await restore([folder, '--into', target.url]);
    expect(restored.code).toBe(0);
    expect(await target.sql`SELECT email = 'a@example.COM' AS same FROM people.contacts`).toEqual([{ same: true }]);
  });

  it('a schema whose definition the export cannot carry (plain inheritance, a range type): every table still exported and checked; schema.sql and the restore say why; nothing created', async () => {
    const db = await createMigratedTestDatabase('waj_restore_uncarried');
    databases.push(db);
    await db.sql.unsafe(`
      CREATE SCHEMA odd;
      CREATE TYPE odd.span AS RANGE (subtype = int4);
      CREATE TABLE odd.parent (id int, during odd.span);
      CREATE TABLE odd.child (extra text) INHERITS (odd.parent);
      INSERT INTO odd.parent VALUES (1, '[1,5)');
      INSERT INTO odd.child VALUES (2, '[2,3)', 'x'), (3, NULL, 'y')`);
    const folder = join(work, 'uncarried');
    const { runId } = await exportThroughJob(db, s3.client, bucket, ['odd'], folder);
    // The run succeeded; its step says what the tarball lacks.
    const [step] = await db.sql<{ result: { definitionUnavailable?: string } }[]>`SELECT result FROM jobs.run_steps WHERE run_id = ${runId}`;
    expect(step!.result.definitionUnavailable).toMatch(/^Schema "odd" holds what its definition cannot carry/);
    // The rows are all there (COPY of a parent leaves out its children's rows, which have a CSV of their own).
    const contents = await readExportTarball(createReadStream(join(folder, 'odd.tgz')));
    expect(contents.broken).toBeUndefined();
    expect(contents.csvFiles.map((csv) => [csv.file, csv.rows])).toEqual([['odd/child.csv', 2], ['odd/parent.csv', 1]]);
    const definition = JSON.parse(contents.definition!.bytes.toString()) as { unavailable?: string; tables: unknown[] };
    expect(definition.unavailable).toMatch(/^Schema "odd" holds what its definition cannot carry: .*type span \(typtype r\).*table child inherits from parent \(not as a partition\)/);
    expect(definition.tables).toEqual([]);
    expect(contents.schemaSql!.bytes.toString()).toMatch(/^-- Schema "odd", .*\n-- The export could not carry this schema's definition: .*inherits.*\n.*\n\\echo .*\n\\quit\n$/);

    const target = await emptyTarget();
    const outcome = await restore([folder, '--into', target.url]);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/odd\.tgz: .*the export could not carry this schema's definition \(Schema "odd" holds .*inherits from parent/);
    expect(await stateOf(target.sql)).toEqual({ schemas: ['public'], rows: {}, catalog: [] });
  });

  it('tables of more than a write buffer each, whose CSVs end and start within one inflated chunk: all loaded (a write waiting for drain when its entry ends)', async () => {
    const db = await createMigratedTestDatabase('waj_restore_wide');
    databases.push(db);
    await db.sql.unsafe(`CREATE SCHEMA wide; ${['a', 'b', 'c'].map((t) => `CREATE TABLE wide.${t} AS SELECT g AS id, repeat(md5(g::text), 3) AS v FROM generate_series(1, 600) g;`).join(' ')}`);
    const folder = join(work, 'wide');
    await exportThroughJob(db, s3.client, bucket, ['wide'], folder);
    const target = await emptyTarget();
    const outcome = await restore([folder, '--into', target.url]);
    expect(outcome.stderr).toBe('');
    expect(outcome.code).toBe(0);
    expect(await rowsOf(target.sql, ['wide'])).toEqual(await rowsOf(db.sql, ['wide']));
  });

  it("the target's backend terminated during a COPY: exit 1 with the cause; nothing replaced, nothing left behind", async () => {
    const db = await createMigratedTestDatabase('waj_restore_bulk');
    databases.push(db);
    await db.sql.unsafe(`CREATE SCHEMA bulk; CREATE TABLE bulk.rows AS SELECT g AS id, md5(g::text) AS a, repeat('x', 200) AS b FROM generate_series(1, 400000) g; ALTER TABLE bulk.rows ADD PRIMARY KEY (id)`);
    const folder = join(work, 'bulk');
    await exportThroughJob(db, s3.client, bucket, ['bulk'], folder);
    const target = await emptyTarget();
    await target.sql.unsafe(`CREATE SCHEMA bulk; CREATE TABLE bulk.rows (id int); INSERT INTO bulk.rows VALUES (42)`);

    const restoring = restore([folder, '--into', target.url]);
    const terminated = await terminateCopyIn(target.sql);
    expect(terminated).toBe(true);
    const outcome = await restoring;
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/Loading "bulk"\."rows": .*connection/i);
    expect(await target.sql`SELECT id FROM bulk.rows`).toEqual([{ id: 42 }]);
    expect(await leftovers(target.sql)).toEqual([]);
  });
});
