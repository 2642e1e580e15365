import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import S3rver from 's3rver';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createS3Client } from '../../lib/clients/s3';
import { createExportJob } from '../../lib/jobs/export-job';
import { createExportStepWork } from '../../lib/jobs/export-steps';
import { createStartSteps } from '../../lib/jobs/start-steps';
import { runStepWorker } from '../../lib/jobs/run-step-worker';
import { runJobWorker } from '../../lib/jobs/run-job-worker';
import { logger } from '../../lib/logger';
import { createRunLedger } from '../../lib/runs/run-ledger';
import type { RunLedger } from '../../lib/runs/run-ledger';
import { createStepLedger } from '../../lib/runs/step-ledger';
import { createMigratedTestDatabase, createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { startEmbeddedPostgres } from '../support/embedded-postgres';
import type { EmbeddedPostgres } from '../support/embedded-postgres';
import { freePort } from '../support/offline';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';
import { downloadObject } from '../fixtures/export/tarball';
import { connectDatabase } from '../../lib/clients/database';

// Faults against the real services, through the export worker's own path (runJobWorker with the
// run ledger): the database connection ended during a COPY (one connection, and one of several),
// the database server restarted, the S3 server stopped during the upload. Each must end as a run
// `failed` with its cause, no temporary files, the previous object in place, and the process
// alive with no uncaught exception or unhandled rejection (vitest fails the file on either).

const PREVIOUS = 'the export from last night';
const SCHEMA = 'faulty';
/** Two tables of ~45 MB of hex text each: their COPYs last long enough to be interrupted. */
const SEED = `
  CREATE SCHEMA ${SCHEMA};
  CREATE TABLE ${SCHEMA}.a_big AS SELECT i AS id, md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) AS h FROM generate_series(1, 450000) i;
  CREATE TABLE ${SCHEMA}.b_big AS SELECT * FROM ${SCHEMA}.a_big;
  CREATE TABLE ${SCHEMA}.c_small AS SELECT i AS id FROM generate_series(1, 10) i;
`;

let ledgerDb: TestDatabase;
let ledger: RunLedger;
let source: TestDatabase;
let s3: TestS3;
let bucket: string;
let tmpRoot: string;
const originalTmpdir = process.env.TMPDIR;

beforeAll(async () => {
  ledgerDb = await createMigratedTestDatabase('waj_export_faults_ledger');
  ledger = createRunLedger(ledgerDb.sql);
  source = await createTestDatabase('waj_export_faults');
  await source.sql.unsafe(SEED);
  s3 = await startTestS3();
  bucket = await s3.createBucket();
  vi.spyOn(logger, 'warn').mockImplementation(() => {}); // s3rver answers AbortMultipartUpload with 405
  vi.spyOn(logger, 'error').mockImplementation(() => {});
  vi.spyOn(logger, 'info').mockImplementation(() => {});
});

beforeEach(async () => {
  // The export makes its run folder in os.tmpdir(), which follows TMPDIR.
  tmpRoot = await mkdtemp(join(tmpdir(), 'waj-export-faults-tmp-'));
  process.env.TMPDIR = tmpRoot;
});

afterEach(async () => {
  if (originalTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = originalTmpdir;
  // No temporary files are left behind, whatever failed.
  expect(await readdir(tmpRoot)).toEqual([]);
  await rm(tmpRoot, { recursive: true, force: true });
});

afterAll(async () => {
  vi.restoreAllMocks();
  await source?.drop();
  await ledgerDb?.drop();
  await s3?.close();
});

async function putPrevious(client: S3Client, key: string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: PREVIOUS }));
}

/** Runs the export worker on `sql` with `fault` happening meanwhile; returns the run as recorded. */
async function exportWithFault(
  sql: Sql,
  client: S3Client,
  tableParallelism: number,
  fault: () => Promise<void>,
): Promise<{ status: string; error: unknown }> {
  const job = exportJob(sql, client, tableParallelism);
  const run = await ledger.enqueue('export', 'http');
  const working = runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: 60_000 }, { sql: ledgerDb.sql, ledger });
  working.catch(() => {});
  await fault();
  await expect(working).rejects.toThrow();
  const recorded = await ledger.getWithSteps(run.id);
  // The schema's step failed with the same cause the run names.
  expect(recorded?.steps.map((step) => [step.name, step.status])).toEqual([[SCHEMA, 'failed']]);
  expect(recorded?.error).toContain(recorded?.steps[0]?.error ?? 'no step error');
  return { status: recorded?.status ?? 'missing', error: recorded?.error };
}

/**
 * The export as `sls invoke local` runs it: the coordinator on the ledger's database, its one step
 * carried out in this process, exporting from `sql` (the database the fault hits).
 */
function exportJob(sql: Sql, client: S3Client, tableParallelism?: number) {
  const work = createExportStepWork({ bucket, prefix: 'export/', tableParallelism }, client);
  const startSteps = createStartSteps({ mode: 'inline' }, 1, (event) =>
    runStepWorker(event, work, { leaseMs: 60_000, maxAttempts: 1 }, { sql, steps: createStepLedger(ledgerDb.sql) }),
  );
  // The run's snapshot is held in the database the step reads (the ledger lives in another here).
  return createExportJob({ schemas: [SCHEMA] }, startSteps, { bound: 'unbounded', source: sql });
}

/** Waits until at least `count` COPYs of `database` are running; returns their backends' pids. */
async function copiesRunning(admin: Sql, database: string, count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 3000; attempt += 1) {
    const rows = await admin<{ pid: number }[]>`
      SELECT pid FROM pg_stat_activity
      WHERE datname = ${database} AND state = 'active' AND query LIKE 'COPY %' AND pid <> pg_backend_pid()`;
    if (rows.length >= count) return rows.map((row) => row.pid);
    await sleep(5);
  }
  throw new Error(`${count} COPYs never ran at once in ${database}`);
}

describe('the export backend ended during a COPY (pg_terminate_backend)', () => {
  for (const parallelism of [1, 2]) {
    it(`fails the run with the cause, on ${parallelism === 1 ? 'one connection' : 'one of two parallel connections'}`, async () => {
      await putPrevious(s3.client, `export/${SCHEMA}.tgz`);
      const sql = connectDatabase(source.url, { max: 3, connectTimeout: 5 });
      const admin = postgres(source.url, { max: 1, onnotice: () => {} });
      try {
        const run = await exportWithFault(sql, s3.client, parallelism, async () => {
          const [pid] = await copiesRunning(admin, source.name, parallelism);
          await admin`SELECT pg_terminate_backend(${pid!})`;
        });
        expect(run.status).toBe('failed');
        expect(JSON.stringify(run.error)).toMatch(/Reading schema \\"faulty\\" from the database: .*(terminating connection|CONNECTION_CLOSED|57P01)/);
        expect((await downloadObject(s3.client, bucket, `export/${SCHEMA}.tgz`)).toString()).toBe(PREVIOUS);
        // The pool is usable again: connections that the server ended are replaced.
        expect(await sql`SELECT 1 AS one`).toEqual([{ one: 1 }]);
        // No COPY is left running on the server (the other table's was cancelled).
        expect(await admin`SELECT pid FROM pg_stat_activity WHERE datname = ${source.name} AND query LIKE 'COPY %' AND state = 'active'`).toEqual([]);
      } finally {
        await sql.end({ timeout: 1 });
        await admin.end({ timeout: 1 });
      }
    });
  }
});

describe('the database server restarted during a COPY', () => {
  let server: EmbeddedPostgres;

  beforeAll(async () => {
    server = await startEmbeddedPostgres();
    const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe('CREATE DATABASE faults');
    } finally {
      await admin.end();
    }
    const seed = postgres(server.adminUrl.replace(/\/postgres$/, '/faults'), { max: 1, onnotice: () => {} });
    try {
      await seed.unsafe(SEED);
    } finally {
      await seed.end();
    }
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('fails the run with the cause; once the server is back, a run from a new client succeeds', async () => {
    await putPrevious(s3.client, `export/${SCHEMA}.tgz`);
    const url = server.adminUrl.replace(/\/postgres$/, '/faults');
    const sql = connectDatabase(url, { max: 3, connectTimeout: 5 });
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const run = await exportWithFault(sql, s3.client, 2, async () => {
        await copiesRunning(admin, 'faults', 1);
        await admin.end({ timeout: 1 });
        await server.restart();
      });
      expect(run.status).toBe('failed');
      expect(JSON.stringify(run.error)).toMatch(/Reading schema \\"faulty\\" from the database: /);
      expect((await downloadObject(s3.client, bucket, `export/${SCHEMA}.tgz`)).toString()).toBe(PREVIOUS);

      // Once the server is back, an export from a new client (a new Lambda container) succeeds and
      // replaces the object: the restart left nothing behind. (The same client is not asserted:
      // postgres.js 3.4 hands the shutdown's FATAL error to later queries on its reconnected
      // connections, and under load that still fails a run on the old pool; a known defect.)
      const fresh = connectDatabase(url, { max: 3, connectTimeout: 5 });
      try {
        const next = await ledger.enqueue('export', 'http');
        await runJobWorker(exportJob(fresh, s3.client), { kind: 'run', runId: next.id }, { leaseMs: 60_000 }, { sql: ledgerDb.sql, ledger }).catch(() => {});
        const recorded = await ledger.get(next.id);
        expect(recorded?.status, recorded?.error ?? '').toBe('succeeded');
      } finally {
        await fresh.end({ timeout: 1 });
      }
      expect((await downloadObject(s3.client, bucket, `export/${SCHEMA}.tgz`)).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    } finally {
      await sql.end({ timeout: 1 });
      await admin.end({ timeout: 1 });
    }
  }, 120_000);
});

describe('the S3 server stopped during the upload', () => {
  it('fails the run with the cause and leaves the previous object', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'waj-s3rver-faults-'));
    const port = await freePort();
    const start = async (): Promise<S3rver> => {
      const server = new S3rver({ port, address: '127.0.0.1', silent: true, directory });
      await server.run();
      return server;
    };
    let server = await start();
    const client = createS3Client({ endpoint: `http://127.0.0.1:${port}` });
    // Stops the server at the first part, mid-upload, cutting the connections it has open.
    let stopping: Promise<void> | undefined;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand' && !stopping) {
          const httpServer = (server as unknown as { httpServer: Server }).httpServer;
          stopping = server.close();
          httpServer.closeAllConnections();
        }
        return next(args);
      },
      { step: 'initialize', name: 'stopServerAtFirstPart' },
    );
    const sql = connectDatabase(source.url, { max: 3 });
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      await putPrevious(client, `export/${SCHEMA}.tgz`);
      const run = await exportWithFault(sql, client, 2, async () => {});
      expect(run.status).toBe('failed');
      expect(JSON.stringify(run.error)).toMatch(/Uploading to s3:\/\/.*\/export\/faulty\.tgz: /);
      await stopping;

      server = await start();
      expect((await downloadObject(client, bucket, `export/${SCHEMA}.tgz`)).toString()).toBe(PREVIOUS);
      // No COPY is left running on the server.
      expect(await sql`SELECT pid FROM pg_stat_activity WHERE datname = ${source.name} AND query LIKE 'COPY %' AND state = 'active'`).toEqual([]);
    } finally {
      await sql.end({ timeout: 1 });
      client.destroy();
      await server.close().catch(() => {});
      await rm(directory, { recursive: true, force: true });
    }
  });
});
