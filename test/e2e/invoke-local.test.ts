import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { TestDatabase } from '../support/database';
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

async function invokeLocal(fn: string, data?: string) {
  const invocation = run('npx', ['serverless', 'invoke', 'local', '--function', fn, ...(data ? ['--data', data] : [])], {
    cwd: projectRoot,
    env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', DATABASE_URL: db.url, EXPORT_BUCKET: bucket, S3_ENDPOINT: s3.endpoint },
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
});
