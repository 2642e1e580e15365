import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Sql } from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createS3Client } from '../../lib/clients/s3';
import { logger } from '../../lib/logger';
import { exportThroughSteps } from '../support/export-steps';
import type { ExportedThroughSteps } from '../support/export-steps';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';
import { downloadObject, objectExists } from '../fixtures/export/tarball';
import { connectDatabase } from '../../lib/clients/database';

const PREVIOUS = 'the export from last night';

let db: TestDatabase;
let s3: TestS3;
let bucket: string;
let tmpRoot: string;
const clients: Sql[] = [];

function client(url: string): Sql {
  const sql = connectDatabase(url, { max: 2, connectTimeout: 5 });
  clients.push(sql);
  return sql;
}

async function putPrevious(key: string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: PREVIOUS }));
}

async function expectPreviousUnchanged(key: string): Promise<void> {
  expect((await downloadObject(s3.client, bucket, key)).toString()).toBe(PREVIOUS);
}

/** The schemas' steps as the job runs them, in one run's snapshot. */
async function exportTo(schemas: string[], sql: Sql, s3Client: S3Client = s3.client, toBucket = bucket): Promise<ExportedThroughSteps> {
  return exportThroughSteps({ bucket: toBucket, prefix: 'export/', schemas }, { sql, s3: s3Client, tmpRoot });
}

function failed(result: ExportedThroughSteps): string[] {
  return result.schemas.filter((outcome) => outcome.status === 'failed').map((outcome) => outcome.schema);
}

beforeAll(async () => {
  db = await createTestDatabase('waj_export_fail');
  await db.sql.unsafe(`
    CREATE SCHEMA good;
    CREATE TABLE good.licences AS SELECT i AS id, 'licence ' || i AS ref FROM generate_series(1, 100) i;
    CREATE SCHEMA only_views;
    CREATE VIEW only_views.numbers AS SELECT 1 AS n;
  `);
  s3 = await startTestS3();
  bucket = await s3.createBucket();
});

beforeEach(async () => {
  tmpRoot = await mkdtemp(join(tmpdir(), 'waj-export-tmp-'));
});

afterEach(async () => {
  // No temporary files are left behind, whatever failed.
  expect(await readdir(tmpRoot)).toEqual([]);
  await rm(tmpRoot, { recursive: true, force: true });
});

afterAll(async () => {
  for (const sql of clients) await sql.end({ timeout: 1 });
  await db?.drop();
  await s3?.close();
});

describe('the export steps when things fail', () => {
  it("a database that refuses connections: the run's snapshot cannot be held, and nothing is uploaded", async () => {
    await putPrevious('export/good.tgz');
    await expect(exportTo(['good', 'other'], client('postgres://postgres@127.0.0.1:1/nowhere'))).rejects.toThrow(/ECONNREFUSED/);
    await expectPreviousUnchanged('export/good.tgz');
    expect(await objectExists(s3.client, bucket, 'export/other.tgz')).toBe(false);
  });

  it('reports an unknown database', async () => {
    const url = new URL(db.url);
    url.pathname = '/waj_no_such_database';
    await expect(exportTo(['good'], client(url.toString()))).rejects.toThrow(/database "waj_no_such_database" does not exist/);
    await expectPreviousUnchanged('export/good.tgz');
  });

  it('reports an unreachable S3 endpoint', async () => {
    const unreachable = createS3Client({ endpoint: 'http://127.0.0.1:1' });
    try {
      const result = await exportTo(['good'], db.sql, unreachable);
      expect(result.schemas[0]).toMatchObject({
        status: 'failed',
        error: expect.stringMatching(/^Uploading to s3:\/\/.*\/export\/good\.tgz: .*ECONNREFUSED/),
      });
    } finally {
      unreachable.destroy();
    }
  });

  it('reports a missing bucket', async () => {
    const result = await exportTo(['good'], db.sql, s3.client, 'no-such-bucket');
    expect(result.schemas[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/bucket does not exist/i) });
  });

  it('aborts the upload when a table fails half way through a schema, leaving the old object', async () => {
    // A role that may read both tables, but reading the second fails: a row-level security policy
    // applies to it, which the export refuses (row_security is off on its connections, as
    // pg_dump's). The failure comes while the first table (20 MB of it) is still being packed, so
    // the cancel lands mid-entry. (A table the role may not read at all is refused before anything
    // is uploaded: see list-base-tables.ts.)
    const role = `waj_reader_${db.name.slice(-12)}`;
    await db.sql.unsafe(`
      CREATE SCHEMA half;
      CREATE TABLE half.a_readable AS SELECT i AS id, md5(i::text) AS h FROM generate_series(1, 500000) i;
      CREATE TABLE half.b_failing (id int);
      INSERT INTO half.b_failing VALUES (1);
      ALTER TABLE half.b_failing ENABLE ROW LEVEL SECURITY;
      CREATE POLICY divide_by_zero ON half.b_failing USING (id / 0 = 1);
      CREATE ROLE ${role} LOGIN;
      GRANT USAGE ON SCHEMA half TO ${role};
      GRANT SELECT ON half.a_readable, half.b_failing TO ${role};
    `);
    try {
      await putPrevious('export/half.tgz');
      const url = new URL(db.url);
      url.username = role;
      const result = await exportTo(['half', 'good'], client(url.toString()));

      expect(result.schemas[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/row-level security policy for table "b_failing"/) });
      await expectPreviousUnchanged('export/half.tgz');
      // The next schema still ran (and failed only for its own reason: this role cannot read it).
      expect(result.schemas[1]).toMatchObject({ schema: 'good', status: 'failed', error: expect.stringMatching(/cannot read table "good"\./) });
    } finally {
      for (const sql of clients.splice(0)) await sql.end({ timeout: 1 });
      await db.sql.unsafe(`DROP SCHEMA half CASCADE; DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  it('a table whose row-level security hides rows from the role fails its schema naming it and the remedy, as pg_dump does; a role that bypasses it exports every row', async () => {
    // Enabled with no policy: a role that is neither the owner nor BYPASSRLS sees no row at all,
    // and would export a header-only CSV without a word.
    const reader = `waj_rls_${db.name.slice(-12)}`;
    const bypass = `waj_bypass_${db.name.slice(-12)}`;
    await db.sql.unsafe(`
      CREATE SCHEMA guarded;
      CREATE TABLE guarded.a_open AS SELECT i AS id FROM generate_series(1, 10) i;
      CREATE TABLE guarded.b_hidden AS SELECT i AS id FROM generate_series(1, 25) i;
      ALTER TABLE guarded.b_hidden ENABLE ROW LEVEL SECURITY;
      CREATE ROLE ${reader} LOGIN;
      CREATE ROLE ${bypass} LOGIN BYPASSRLS;
      GRANT USAGE ON SCHEMA guarded TO ${reader}, ${bypass};
      GRANT SELECT ON ALL TABLES IN SCHEMA guarded TO ${reader}, ${bypass};
    `);
    const as = (role: string): Sql => {
      const url = new URL(db.url);
      url.username = role;
      return client(url.toString());
    };
    try {
      await putPrevious('export/guarded.tgz');
      const refused = await exportTo(['guarded'], as(reader));
      expect(refused.schemas[0]).toMatchObject({
        status: 'failed',
        error: expect.stringMatching(/row-level security policy for table "b_hidden".*must own the table or have BYPASSRLS/),
      });
      await expectPreviousUnchanged('export/guarded.tgz');

      const exported = await exportTo(['guarded'], as(bypass));
      expect(exported.schemas[0]).toMatchObject({ status: 'succeeded', tables: 2, rows: 35 });
    } finally {
      for (const sql of clients.splice(0)) await sql.end({ timeout: 1 });
      await db.sql.unsafe(`DROP SCHEMA guarded CASCADE; DROP OWNED BY ${reader}; DROP OWNED BY ${bypass}; DROP ROLE ${reader}; DROP ROLE ${bypass}`);
    }
  });

  it('aborts cleanly when S3 fails while a table is being packed', async () => {
    // ~30 MB of hex text (~15 MB gzipped): more than one 8 MiB part, so the table takes the path
    // of a reserved part for its header, and every part of it fails.
    await db.sql.unsafe(`
      CREATE SCHEMA bulky;
      CREATE TABLE bulky.hashes AS SELECT i AS id, md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) AS h
        FROM generate_series(1, 300000) i;
    `);
    const failing = createS3Client({ endpoint: s3.endpoint });
    failing.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand') throw new Error('S3 is having a bad day');
        return next(args);
      },
      { step: 'initialize', name: 'failUploadParts' },
    );
    try {
      await putPrevious('export/bulky.tgz');
      const result = await exportTo(['bulky', 'good'], db.sql, failing);
      expect(result.schemas[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/^Uploading to .*S3 is having a bad day/) });
      await expectPreviousUnchanged('export/bulky.tgz');
    } finally {
      failing.destroy();
      await db.sql.unsafe('DROP SCHEMA bulky CASCADE');
    }
  });

  it('a schema that fails fails its own step only, and each outcome is logged', async () => {
    const info = vi.spyOn(logger, 'info').mockImplementation(() => {});
    const error = vi.spyOn(logger, 'error').mockImplementation(() => {});
    vi.spyOn(logger, 'warn').mockImplementation(() => {}); // s3rver cannot abort uploads
    const result = await exportTo(['no_such_schema', 'good', 'only_views'], db.sql);
    vi.restoreAllMocks();

    expect(error.mock.calls.map(([message, extra]) => [message, (extra as { schema: string }).schema])).toEqual([
      ['Schema export failed', 'no_such_schema'],
      ['Schema export failed', 'only_views'],
    ]);
    expect(error.mock.calls[0]?.[1]).toMatchObject({ error: expect.objectContaining({ message: expect.stringMatching(/no base tables/) }) });
    expect(info.mock.calls.map(([message]) => message)).toEqual(['Schema exported']);
    expect(info.mock.calls[0]?.[1]).toMatchObject({ schema: 'good', tables: 1, rows: 100, bytes: expect.any(Number), timeTakenMs: expect.any(Number) });

    expect(result.schemas.map(({ schema, status }) => ({ schema, status }))).toEqual([
      { schema: 'no_such_schema', status: 'failed' },
      { schema: 'good', status: 'succeeded' },
      { schema: 'only_views', status: 'failed' },
    ]);
    expect(result.schemas[0]?.error).toMatch(/"no_such_schema" has no base tables/);
    expect(result.schemas[2]?.error).toMatch(/"only_views" has no base tables/);
    expect(result.schemas[1]).toMatchObject({ tables: 1, rows: 100, key: 'export/good.tgz' });
    expect(await objectExists(s3.client, bucket, 'export/no_such_schema.tgz')).toBe(false);
    expect(await objectExists(s3.client, bucket, 'export/only_views.tgz')).toBe(false);
    // This run succeeded for good, so its object is now the new tarball.
    expect((await downloadObject(s3.client, bucket, 'export/good.tgz')).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
  });
});

describe('run folders left by a run that Lambda stopped', () => {
  async function leaveFolders(): Promise<void> {
    await mkdir(join(tmpRoot, 'waj-export-Ab12Cd', '0'), { recursive: true });
    await writeFile(join(tmpRoot, 'waj-export-Ab12Cd', '0', 'licences.csv'), 'id,ref\n1,half written');
    await mkdir(join(tmpRoot, 'waj-export-tmp-zz9999'));
    await mkdir(join(tmpRoot, 'someone-else'));
  }

  it('are removed before the run when asked (in AWS), and nothing else is', async () => {
    await leaveFolders();
    const result = await exportThroughSteps({ bucket, prefix: 'export/', schemas: ['good'] }, { sql: db.sql, s3: s3.client, tmpRoot, removeLeftovers: true });
    expect(failed(result)).toEqual([]);
    expect((await readdir(tmpRoot)).sort()).toEqual(['someone-else', 'waj-export-tmp-zz9999']);
    await rm(join(tmpRoot, 'someone-else'), { recursive: true });
    await rm(join(tmpRoot, 'waj-export-tmp-zz9999'), { recursive: true });
  });

  it('are left alone otherwise (locally other runs may share the folder)', async () => {
    await leaveFolders();
    await exportTo(['good'], db.sql);
    expect((await readdir(tmpRoot)).sort()).toEqual(['someone-else', 'waj-export-Ab12Cd', 'waj-export-tmp-zz9999']);
    for (const name of await readdir(tmpRoot)) await rm(join(tmpRoot, name), { recursive: true });
  });
});
