import { execFile } from 'node:child_process';
import { holdTestRunSnapshot } from '../support/run-snapshot';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Sql } from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { logger } from '../../lib/logger';
import { exportThroughSteps } from '../support/export-steps';
import { exportSchema } from '../../lib/export/export-schema';
import type { SchemaManifest } from '../../lib/export/export-schema';
import { quoteIdentifier as q } from '../../lib/export/quote-identifier';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';
import { downloadObject } from '../fixtures/export/tarball';
import { connectDatabase } from '../../lib/clients/database';

const run = promisify(execFile);

// The tarball is gzip members back to back: a header member, the table's own members (one per
// MiB), a padding member, per table. Every reader must see one ordinary .tgz.
const READERS = 'readers';
// 63 bytes (PostgreSQL's limit) of non-ASCII letters and slashes, each slash written %2F in the
// entry name: `<schema>/<table>.csv` is 117 bytes, past tar's 100-byte name field, so the entry
// needs a pax header.
const LONG_TABLE = 'Ω/'.repeat(21);

let db: TestDatabase;
let s3: TestS3;
let bucket: string;
let tmpRoot: string;
const clients: Sql[] = [];

function client(url: string, max = 3): Sql {
  const sql = connectDatabase(url, { max });
  clients.push(sql);
  return sql;
}

beforeAll(async () => {
  db = await createTestDatabase('waj_export_parallel');
  await db.sql.unsafe(`
    CREATE SCHEMA ${READERS};
    -- ~35 MB of hex text, ~17 MB gzipped: more than one 8 MiB part, so its header goes into a reserved part.
    CREATE TABLE ${READERS}.big_hex AS SELECT i AS id, md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) AS h FROM generate_series(1, 350000) i;
    CREATE TABLE ${READERS}.ck_small AS SELECT i AS id, 'row ' || i AS note FROM generate_series(1, 1000) i;
    CREATE TABLE ${READERS}.empty_table (id int);
    CREATE TABLE ${READERS}.${q(LONG_TABLE)} AS SELECT i AS id, E'line\\nbreak "quoted", ' || i AS note FROM generate_series(1, 5000) i;
    CREATE TABLE ${READERS}.medium_hex AS SELECT i AS id, md5(i::text) AS h FROM generate_series(1, 200000) i;
    CREATE TABLE ${READERS}.z_last AS SELECT i AS id FROM generate_series(1, 3) i;
  `);
  s3 = await startTestS3();
  bucket = await s3.createBucket();
  vi.spyOn(logger, 'warn').mockImplementation(() => {}); // s3rver answers AbortMultipartUpload with 405
  vi.spyOn(logger, 'error').mockImplementation(() => {});
  vi.spyOn(logger, 'info').mockImplementation(() => {});
});

beforeEach(async () => {
  tmpRoot = await mkdtemp(join(tmpdir(), 'waj-export-tmp-'));
});

afterEach(async () => {
  expect(await readdir(tmpRoot)).toEqual([]);
  await rm(tmpRoot, { recursive: true, force: true });
});

afterAll(async () => {
  vi.restoreAllMocks();
  for (const sql of clients) await sql.end({ timeout: 1 });
  await db?.drop();
  await s3?.close();
});

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A minimal tar reader (ustar and pax `path`/`size`), to check the archive Node's zlib unpacked. */
function readTar(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let offset = 0;
  let pax: Record<string, string> = {};
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) return files;
    const field = (start: number, length: number) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
    const size = Number(pax.size ?? parseInt(field(124, 12), 8));
    const type = field(156, 1);
    const data = tar.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      pax = {};
      for (const record of data.toString('utf8').split('\n').filter(Boolean)) {
        const [key, ...value] = record.slice(record.indexOf(' ') + 1).split('=');
        pax[key!] = value.join('=');
      }
      continue;
    }
    files.set(pax.path ?? field(0, 100), Buffer.from(data));
    pax = {};
  }
  throw new Error('The archive has no end-of-archive blocks');
}

describe('the .tgz, with tables in parallel', () => {
  it('is read to the end by gzip -t, GNU tar, Python tarfile and Node zlib, each CSV matching the manifest', async () => {
    const result = await exportThroughSteps(
      { bucket, prefix: 'export/', schemas: [READERS], tableParallelism: 2 },
      { sql: client(db.url), s3: s3.client, tmpRoot },
    );
    expect(result.schemas[0]).toMatchObject({ status: 'succeeded', tables: 6 });
    const tgz = await downloadObject(s3.client, bucket, `export/${READERS}.tgz`);
    const folder = await mkdtemp(join(tmpdir(), 'waj-readers-'));
    try {
      const archive = join(folder, 'readers.tgz');
      await writeFile(archive, tgz);

      // gzip -t: every member intact, to the end.
      await run('gzip', ['-t', archive]);

      // Node's zlib: the members read as one stream, a tar that ends properly.
      const files = readTar(gunzipSync(tgz));
      const manifest = JSON.parse(files.get(`${READERS}/manifest.json`)!.toString('utf8')) as SchemaManifest;
      expect(manifest.tables.map((t) => t.table)).toEqual(['big_hex', 'ck_small', 'empty_table', 'medium_hex', 'z_last', LONG_TABLE]);
      expect(Buffer.byteLength(manifest.tables.at(-1)!.file)).toBeGreaterThan(100);
      // The definition first (a restore builds the tables before their rows pass), the manifest last.
      expect(manifest.definitionFiles?.map((f) => f.file)).toEqual([`${READERS}/definition.json`, `${READERS}/schema.sql`]);
      expect([...files.keys()]).toEqual([`${READERS}/definition.json`, `${READERS}/schema.sql`, ...manifest.tables.map((t) => t.file), `${READERS}/manifest.json`]);
      for (const entry of manifest.definitionFiles ?? []) {
        const content = files.get(entry.file)!;
        expect({ bytes: content.length, sha256: sha256(content) }, entry.file).toEqual({ bytes: entry.bytes, sha256: entry.sha256 });
      }
      for (const table of manifest.tables) {
        const csv = files.get(table.file)!;
        expect({ bytes: csv.length, sha256: sha256(csv) }, table.file).toEqual({ bytes: table.bytes, sha256: table.sha256 });
        const [{ count }] = await db.sql.unsafe<[{ count: number }]>(`SELECT count(*)::int AS count FROM ${READERS}.${q(table.table)}`);
        expect(table.rows, table.file).toBe(count);
      }

      // GNU tar.
      await run('tar', ['-xzf', archive, '-C', folder]);
      for (const table of manifest.tables) {
        const csv = await readFile(join(folder, table.file));
        expect(sha256(csv), `tar: ${table.file}`).toBe(table.sha256);
      }

      // Python's tarfile.
      const { stdout } = await run('python3', [
        '-c',
        'import tarfile, hashlib, json, sys\n' +
          "t = tarfile.open(sys.argv[1], 'r:gz')\n" +
          'print(json.dumps({m.name: [m.size, hashlib.sha256(t.extractfile(m).read()).hexdigest()] for m in t.getmembers()}))',
        archive,
      ]);
      const python = JSON.parse(stdout) as Record<string, [number, string]>;
      for (const table of manifest.tables) expect(python[table.file], `python: ${table.file}`).toEqual([table.bytes, table.sha256]);
      expect(Object.keys(python)).toHaveLength(manifest.tables.length + 3);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('one snapshot across the parallel connections', () => {
  it('leaves out rows committed after the export took its snapshot, on every connection, and reads tables at once', async () => {
    await db.sql.unsafe(`
      CREATE SCHEMA snap;
      CREATE TABLE snap.t1 AS SELECT i AS id, md5(i::text) AS h FROM generate_series(1, 150000) i;
      CREATE TABLE snap.t2 AS SELECT * FROM snap.t1;
      CREATE TABLE snap.t3 AS SELECT * FROM snap.t1;
      CREATE TABLE snap.t4 AS SELECT * FROM snap.t1;
    `);
    const watcher = client(db.url, 1);
    let mostCopiesAtOnce = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const rows = await watcher`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${db.name} AND state = 'active' AND query LIKE 'COPY %'`;
        mostCopiesAtOnce = Math.max(mostCopiesAtOnce, rows[0]!.n as number);
        await sleep(5);
      }
    })();

    // The run's snapshot is held (as the coordinator holds it) on another client. The export's
    // pool has 3 connections; two are held here, so the export's first connection imports the
    // snapshot and its second waits for a connection. Rows are committed in between, then one
    // held connection is let go: a second connection that took a snapshot of its own would see them.
    const { run, held: runSnapshot } = await holdTestRunSnapshot(db.sql);
    const exportSql = client(db.url, 3);
    const held = [await exportSql.reserve(), await exportSql.reserve()];
    const folder = join(tmpRoot, 'snap');
    const exporting = exportSchema('snap', { sql: exportSql, s3: s3.client, bucket, key: 'export/snap.tgz', folder, parallelism: 2, run });
    exporting.catch(() => {});
    for (let attempt = 0; ; attempt += 1) {
      const [row] = await watcher`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${db.name} AND state = 'idle in transaction'`;
      if (row!.n === 2) break;
      if (attempt > 2000) throw new Error('The export never took its snapshot');
      await sleep(5);
    }
    await db.sql.unsafe("INSERT INTO snap.t1 VALUES (-1, 'late'); INSERT INTO snap.t2 VALUES (-1, 'late'); INSERT INTO snap.t3 VALUES (-1, 'late'); INSERT INTO snap.t4 VALUES (-1, 'late')");
    // Every table is locked, so each COPY that starts waits (and stays active) until the lock goes:
    // with two connections, two COPYs are seen at once however fast they are and however busy the
    // machine is; with one, never more than one.
    const locker = await db.sql.reserve();
    await locker`BEGIN`;
    await locker`LOCK snap.t1, snap.t2, snap.t3, snap.t4 IN ACCESS EXCLUSIVE MODE`;
    for (const connection of held) connection.release();
    for (let attempt = 0; mostCopiesAtOnce < 2 && attempt < 2000; attempt += 1) await sleep(5);
    await locker`COMMIT`;
    locker.release();
    const { tables } = await exporting;
    await runSnapshot.release();
    watching = false;
    await watch;
    await rm(folder, { recursive: true, force: true });

    expect(tables.map((t) => t.rows)).toEqual([150000, 150000, 150000, 150000]);
    const files = readTar(gunzipSync(await downloadObject(s3.client, bucket, 'export/snap.tgz')));
    for (const table of tables) expect(files.get(table.file)!.toString('utf8'), table.file).not.toContain('late');
    expect(mostCopiesAtOnce).toBe(2);
  });
});

describe('a table that fails in the parallel path', () => {
  it('aborts the upload, cancels the other COPY and leaves the old object and no temporary files', async () => {
    const role = `waj_par_${db.name.slice(-12)}`;
    await db.sql.unsafe(`
      CREATE SCHEMA half;
      CREATE TABLE half.a_readable AS SELECT i AS id, md5(i::text) || md5((i + 1)::text) AS h FROM generate_series(1, 400000) i;
      CREATE TABLE half.b_failing AS SELECT i AS id FROM generate_series(1, 3000000) i;
      CREATE TABLE half.c_readable AS SELECT * FROM half.a_readable;
      CREATE ROLE ${role} LOGIN;
      GRANT USAGE ON SCHEMA half TO ${role};
      GRANT SELECT ON half.a_readable, half.b_failing, half.c_readable TO ${role};
    `);
    try {
      await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'export/half.tgz', Body: 'the export from last night' }));
      const url = new URL(db.url);
      url.username = role;
      // The role may read every table (a table it may not read is refused before any COPY: see
      // list-base-tables.ts), but b_failing's COPY, read ahead into a file of its own, has its
      // connection ended on the server once it has streamed rows, so it fails half way.
      let copied = -1;
      const ending = (async () => {
        for (let tries = 0; tries < 3000; tries += 1) {
          const [copying] = await db.sql<{ pid: number; tuples: string }[]>`
            SELECT p.pid, p.tuples_processed::text AS tuples FROM pg_stat_progress_copy p JOIN pg_class c ON c.oid = p.relid
            WHERE c.relname = 'b_failing' AND p.tuples_processed > 100000`;
          if (copying) {
            copied = Number(copying.tuples);
            await db.sql`SELECT pg_terminate_backend(${copying.pid})`;
            return;
          }
          await sleep(5);
        }
      })();
      const result = await exportThroughSteps({ bucket, prefix: 'export/', schemas: ['half'], tableParallelism: 2 }, { sql: client(url.toString()), s3: s3.client, tmpRoot });
      await ending;
      expect(copied, 'b_failing had streamed rows when its connection was ended').toBeGreaterThan(100000);
      expect(result.schemas[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/terminating connection|CONNECTION_CLOSED|connection was closed/) });
      expect((await downloadObject(s3.client, bucket, 'export/half.tgz')).toString()).toBe('the export from last night');
      expect(await db.sql`SELECT pid FROM pg_stat_activity WHERE datname = ${db.name} AND query LIKE 'COPY %' AND state = 'active'`).toEqual([]);
    } finally {
      for (const sql of clients.splice(0)) await sql.end({ timeout: 1 });
      await db.sql.unsafe(`DROP SCHEMA half CASCADE; DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });
});
