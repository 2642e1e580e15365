import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { TestDatabase } from '../support/database';
import { localApiKey, startOffline } from '../support/offline';
import type { Offline } from '../support/offline';
import { startSampleEnvironment } from '../support/sample-environment';
import type { SampleEnvironment } from '../support/sample-environment';
import type { TestS3 } from '../support/s3';

/**
 * End to end through `serverless offline`: HTTP into the emulated API Gateway, the API function's
 * real asynchronous InvokeCommand into the emulated Lambda API, the worker against the real
 * PostgreSQL and a real S3-protocol server, and the run read back over HTTP.
 */

let environment: SampleEnvironment | undefined;
let db: TestDatabase;
let s3: TestS3;
let bucket: string;
let offline: Offline;

beforeAll(async () => {
  environment = await startSampleEnvironment();
  ({ db, s3, bucket } = environment);
  offline = await startOffline({ DATABASE_URL: db.url, EXPORT_BUCKET: bucket, S3_ENDPOINT: s3.endpoint });
}, 180_000);

afterAll(async () => {
  await offline?.stop();
  await environment?.stop();
});

async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  return fetch(`${offline.httpUrl}${path}`, {
    method,
    body,
    headers: { 'x-api-key': localApiKey(), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
  });
}

async function waitForRun(location: string): Promise<{ status: string; result: unknown; error: string | null }> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const response = await call('GET', location);
    expect(response.status).toBe(200);
    const run = (await response.json()) as { status: string; result: unknown; error: string | null };
    if (!['queued', 'running'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run still ${run.status}:\n${offline.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe('serverless offline, end to end', () => {
  it('POST /jobs/export answers 204 at once and the worker uploads one tarball per schema', async () => {
    const response = await call('POST', '/jobs/export');
    expect(response.status, offline.output()).toBe(204);
    expect(await response.text()).toBe('');
    const location = response.headers.get('location');
    expect(location).toMatch(/^\/jobs\/runs\/[0-9a-f-]{36}$/);

    const run = await waitForRun(location!);
    expect(run.status, `${run.error}\n${offline.output()}`).toBe('succeeded');
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'export/' }));
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(
      ['crm', 'crm_v2', 'idm', 'permit', 'returns', 'water'].map((s) => `export/${s}.tgz`),
    );

    const history = await call('GET', '/jobs/export/runs?limit=5');
    const { runs } = (await history.json()) as { runs: { id: string; trigger: string }[] };
    expect(runs[0]).toMatchObject({ id: location!.split('/').pop(), trigger: 'http' });
  });

  it('POST /jobs/time-limited adds the workflow rows through the worker', async () => {
    const response = await call('POST', '/jobs/time-limited');
    expect(response.status, offline.output()).toBe(204);
    const run = await waitForRun(response.headers.get('location')!);
    expect(run.status, run.error ?? '').toBe('succeeded');
    const [{ count } = { count: -1 }] = await db.sql<{ count: number }[]>`select count(*)::int as count from water.charge_version_workflows where status = 'to_setup'`;
    expect(run.result).toMatchObject({ count });
    expect(count).toBeGreaterThan(0);
  });

  it('answers bad requests with a JSON 4xx and records no run', async () => {
    const before = await db.sql`select id from jobs.runs`;
    const unknownSchema = await call('POST', '/jobs/export', '{"schemas":["public"]}');
    expect(unknownSchema.status).toBe(400);
    expect(((await unknownSchema.json()) as { error: string }).error).toMatch(/public/);
    const wrongMethod = await call('DELETE', '/jobs/export');
    expect(wrongMethod.status).toBe(405);
    const notJson = await call('POST', '/jobs/time-limited', 'go', { 'Content-Type': 'text/plain' });
    expect(notJson.status).toBe(415);
    const badId = await call('GET', '/jobs/runs/latest');
    expect(badId.status).toBe(400);
    expect(await db.sql`select id from jobs.runs`).toHaveLength(before.length);
  });
});
