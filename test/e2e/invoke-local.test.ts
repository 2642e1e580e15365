import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { rowsOf } from '../support/restore-checks';
import { projectRoot } from '../support/packaged-template';
import { startSampleEnvironment } from '../support/sample-environment';
import type { SampleEnvironment } from '../support/sample-environment';
import type { TestS3 } from '../support/s3';

const run = promisify(execFile);

/** `serverless invoke local` runs each worker against the local services, taking settings from the shell. */

let environment: SampleEnvironment | undefined;
let db: TestDatabase;
let s3: TestS3;
let bucket: string;

beforeAll(async () => {
  environment = await startSampleEnvironment();
  ({ db, s3, bucket } = environment);
});

afterAll(async () => {
  await environment?.stop();
});

async function invokeLocal(fn: string, data?: string, env: Record<string, string> = {}) {
  const invocation = run('npx', ['serverless', 'invoke', 'local', '--function', fn, ...(data ? ['--data', data] : [])], {
    cwd: projectRoot,
    env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', DATABASE_URL: db.url, EXPORT_BUCKET: bucket, S3_ENDPOINT: s3.endpoint, ...env },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 180_000,
  });
  // Without --data, invoke local reads the event from stdin: give it an empty one, as a terminal would.
  invocation.child.stdin?.end();
  return invocation;
}

describe('sls invoke local', () => {
  it('exportWorker exports the schemas asked for and records a manual run', async () => {
    const { stdout } = await invokeLocal('exportWorker', '{"schemas":["crm","idm"]}');
    expect(stdout).toContain('"status": "succeeded"');
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(['export/crm.tgz', 'export/idm.tgz']);
    const runs = await db.sql`select job, trigger, status, params from jobs.runs`;
    expect(runs).toEqual([{ job: 'export', trigger: 'manual', status: 'succeeded', params: { schemas: ['crm', 'idm'] } }]);
  });

  it('restoreWorker restores the schemas asked for into RESTORE_DATABASE_URL, its steps in the same process, and records a manual run', async () => {
    const target = await createTestDatabase('waj_invoke_local_reporting');
    try {
      const { stdout } = await invokeLocal('restoreWorker', '{"schemas":["crm","idm"]}', { RESTORE_DATABASE_URL: target.url });
      expect(stdout).toContain('"status": "succeeded"');
      expect(await rowsOf(target.sql, ['crm', 'idm'])).toEqual(await rowsOf(db.sql, ['crm', 'idm']));
      const runs = await db.sql`select job, trigger, status, params from jobs.runs where job = 'restore'`;
      expect(runs).toEqual([{ job: 'restore', trigger: 'manual', status: 'succeeded', params: { schemas: ['crm', 'idm'] } }]);
    } finally {
      await target.drop();
    }
  });

  it('restoreWorker without RESTORE_DATABASE_URL fails its run naming the parameter it could not read and the setting to give', async () => {
    const failure = await invokeLocal('restoreWorker', '{"schemas":["crm"]}').then(
      () => undefined,
      (error: { stdout: string; stderr: string }) => error,
    );
    expect(failure, 'invoke local should exit non-zero').toBeDefined();
    const cause = /SSM parameter \/water-abstraction-jobs\/dev\/restore-database-url \(RESTORE_DATABASE_URL_PARAMETER\): .*For local use, set RESTORE_DATABASE_URL instead/;
    expect(`${failure!.stdout}${failure!.stderr}`).toMatch(cause);
    const [runRow] = await db.sql<{ status: string; error: string }[]>`select status, error from jobs.runs where job = 'restore' order by requested_at desc limit 1`;
    expect(runRow?.status).toBe('failed');
    expect(runRow?.error).toMatch(cause);
  });

  it('timeLimitedWorker adds the workflow rows and reports the count', async () => {
    const countRows = async () =>
      (await db.sql<{ count: number }[]>`select count(*)::int as count from water.charge_version_workflows`)[0]!.count;
    const before = await countRows();
    const { stdout } = await invokeLocal('timeLimitedWorker');
    expect(stdout).toContain('"status": "succeeded"');
    const added = (await countRows()) - before;
    expect(added).toBeGreaterThan(0);
    expect(stdout).toContain(`"count": ${added}`);
  });

  it('fails with a clear error for a malformed event, recording nothing', async () => {
    const before = await db.sql`select id from jobs.runs`;
    const failure = await invokeLocal('exportWorker', '{"schemas":"crm"}').then(
      () => undefined,
      (error: { stdout: string; stderr: string }) => error,
    );
    expect(failure, 'invoke local should exit non-zero').toBeDefined();
    expect(`${failure!.stdout}${failure!.stderr}`).toMatch(/non-empty list of schema names/);
    expect(await db.sql`select id from jobs.runs`).toHaveLength(before.length);
  });

  it('exportWorker records a failed run, and does not crash, when the server ends its connection during a COPY', async () => {
    // The crash of issue 9: "Uncaught exception: TypeError: Cannot read properties of null
    // (reading 'resume')" from the COPY stream's close handler, the run left running.
    await db.sql.unsafe(`
      CREATE SCHEMA faulty;
      CREATE TABLE faulty.big AS SELECT i AS id, md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) AS h FROM generate_series(1, 600000) i;
    `);
    const folder = await mkdtemp(join(tmpdir(), 'waj-invoke-tmp-'));
    try {
      const invocation = invokeLocal('exportWorker', '{"schemas":["faulty"]}', { EXPORT_SCHEMAS: 'faulty', TMPDIR: folder });
      const outcome = invocation.then(
        () => undefined,
        (error: { stdout: string; stderr: string }) => error,
      );
      let terminated = false;
      for (let attempt = 0; attempt < 12_000 && !terminated; attempt += 1) {
        const rows = await db.sql`SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
          WHERE datname = ${db.name} AND state = 'active' AND query LIKE 'COPY %' AND pid <> pg_backend_pid()`;
        terminated = rows.length > 0;
        if (!terminated) await sleep(10);
      }
      expect(terminated, 'a COPY was seen and ended').toBe(true);
      const failure = await outcome;
      expect(failure, 'invoke local should exit non-zero').toBeDefined();
      const output = `${failure!.stdout}${failure!.stderr}`;
      expect(output).not.toMatch(/Uncaught exception|Cannot read properties of null/);
      const [runRow] = await db.sql<{ status: string; error: unknown }[]>`select status, error from jobs.runs where params = '{"schemas":["faulty"]}'::jsonb`;
      expect(runRow?.status).toBe('failed');
      // The server's message, or the driver's when the socket closed first.
      expect(JSON.stringify(runRow?.error)).toMatch(/Reading schema \\"faulty\\" from the database: .*(terminating connection due to administrator command|CONNECTION_CLOSED)/);
      expect(await readdir(folder)).toEqual([]);
      const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'export/faulty' }));
      expect(listed.Contents ?? []).toEqual([]);
    } finally {
      await rm(folder, { recursive: true, force: true });
      await db.sql.unsafe('DROP SCHEMA faulty CASCADE');
    }
  });
});
