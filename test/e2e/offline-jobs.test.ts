import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { adminUrl } from '../support/database';
import type { TestDatabase } from '../support/database';
import { DEFAULT_EXPORT_SCHEMAS } from '../../lib/config';
import type { RunWithSteps } from '../../lib/runs/run-ledger';
import { localApiKey, startOffline } from '../support/offline';
import type { Offline } from '../support/offline';
import { startSampleEnvironment } from '../support/sample-environment';
import type { SampleEnvironment } from '../support/sample-environment';
import type { TestS3 } from '../support/s3';
import { downloadObject, unpackTarball } from '../fixtures/export/tarball';

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

/**
 * The functions connect as a role of their own, as a careful deployment would: it may do
 * everything except read permit.licence, so the permit schema cannot be exported whole.
 */
const role = `waj_jobs_${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  environment = await startSampleEnvironment();
  ({ db, s3, bucket } = environment);
  await db.sql.unsafe(`CREATE ROLE ${role} LOGIN`);
  for (const schema of [...DEFAULT_EXPORT_SCHEMAS, 'jobs']) {
    await db.sql.unsafe(`GRANT USAGE ON SCHEMA ${schema} TO ${role}; GRANT ALL ON ALL TABLES IN SCHEMA ${schema} TO ${role}; GRANT SELECT ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role}`);
  }
  await db.sql.unsafe(`REVOKE SELECT ON permit.licence FROM ${role}`);
  const url = new URL(db.url);
  url.username = role;
  offline = await startOffline({ DATABASE_URL: url.toString(), EXPORT_BUCKET: bucket, S3_ENDPOINT: s3.endpoint });
}, 180_000);

afterAll(async () => {
  await offline?.stop();
  await db?.sql.unsafe(`DROP OWNED BY ${role}`);
  await environment?.stop();
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP ROLE IF EXISTS ${role}`).finally(() => admin.end());
});

async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  return fetch(`${offline.httpUrl}${path}`, {
    method,
    body,
    headers: { 'x-api-key': localApiKey(), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
  });
}

async function waitForRun(location: string): Promise<RunWithSteps> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const response = await call('GET', location);
    expect(response.status).toBe(200);
    const run = (await response.json()) as RunWithSteps;
    if (!['queued', 'running'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run still ${run.status}:\n${offline.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe('serverless offline, end to end', () => {
  it('POST /jobs/export of three schemas: three steps, each its own asynchronous invocation, three tarballs, the run succeeded', async () => {
    const response = await call('POST', '/jobs/export', '{"schemas":["crm","water","returns"]}');
    expect(response.status, offline.output()).toBe(204);
    expect(await response.text()).toBe('');
    const location = response.headers.get('location');
    expect(location).toMatch(/^\/jobs\/runs\/[0-9a-f-]{36}$/);
    const runId = location!.split('/').pop()!;

    const run = await waitForRun(location!);
    expect(run.status, `${run.error}\n${offline.output()}`).toBe('succeeded');
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'export/' }));
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(['crm', 'returns', 'water'].map((s) => `export/${s}.tgz`));
    expect(run.steps.map((step) => [step.name, step.status, step.attempts])).toEqual([
      ['water', 'succeeded', 1],
      ['returns', 'succeeded', 1],
      ['crm', 'succeeded', 1],
    ]);
    for (const step of run.steps) expect(step.result).toMatchObject({ key: `export/${step.name}.tgz`, tables: expect.any(Number) });
    expect(run.progress).toMatchObject({ schemasDone: 3, schemasTotal: 3 });
    // One moment: every step, each in its own invocation, imported the coordinator's snapshot, and
    // every tarball says so (the manifest's runId and asOf are the run's).
    expect(run.asOf).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    for (const step of run.steps) expect(step.result).toMatchObject({ asOf: run.asOf });
    const imported = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs.run_steps WHERE run_id = ${runId} AND snapshot_imported_at IS NOT NULL`;
    expect(imported).toEqual([{ n: 3 }]);
    for (const schema of ['crm', 'returns', 'water']) {
      const { folder, entries } = await unpackTarball(await downloadObject(s3.client, bucket, `export/${schema}.tgz`));
      const manifest = JSON.parse(await readFile(join(folder, entries.find((e) => e.endsWith('/manifest.json'))!), 'utf8')) as { runId: string; asOf: string };
      expect({ runId: manifest.runId, asOf: manifest.asOf }).toEqual({ runId, asOf: run.asOf });
    }
    // Each step ran in an invocation of its own through the emulated Lambda API (not in-process).
    const requests = await db.sql<{ lambda_request_id: string | null }[]>`SELECT lambda_request_id FROM jobs.run_steps WHERE run_id = ${runId}`;
    expect(requests.every((r) => r.lambda_request_id !== null)).toBe(true);
    expect(new Set(requests.map((r) => r.lambda_request_id)).size).toBe(3);

    const history = await call('GET', '/jobs/export/runs?limit=5');
    const { runs } = (await history.json()) as { runs: { id: string; trigger: string }[] };
    expect(runs[0]).toMatchObject({ id: runId, trigger: 'http' });
  });

  it('a redelivered step event, through the Lambda API, uploads nothing a second time', async () => {
    const [step] = await db.sql<{ run_id: string; name: string }[]>`
      SELECT run_id, name FROM jobs.run_steps WHERE name = 'crm' AND status = 'succeeded' LIMIT 1`;
    expect(step, 'the three-schema export ran first').toBeDefined();
    const head = () => s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'export/crm.tgz' }));
    const before = await head();
    const lambda = new LambdaClient({ endpoint: offline.lambdaEndpoint, region: 'eu-west-2', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    try {
      const answer = await lambda.send(
        new InvokeCommand({
          FunctionName: 'water-abstraction-jobs-dev-exportSchemaWorker',
          Payload: Buffer.from(JSON.stringify({ runId: step!.run_id, step: 'crm' })),
        }),
      );
      expect(JSON.parse(Buffer.from(answer.Payload!).toString())).toMatchObject({ status: 'not_claimed', reason: 'already_succeeded' });
    } finally {
      lambda.destroy();
    }
    const after = await head();
    expect([after.ETag, after.LastModified]).toEqual([before.ETag, before.LastModified]);
    expect(await db.sql`SELECT status, attempts FROM jobs.run_steps WHERE run_id = ${step!.run_id} AND name = 'crm'`).toEqual([{ status: 'succeeded', attempts: 1 }]);
  });

  it('a schema with a table the role cannot read: that step fails naming the table, the others upload, the run fails naming it', async () => {
    const response = await call('POST', '/jobs/export', '{"schemas":["crm_v2","idm","permit"]}');
    expect(response.status, offline.output()).toBe(204);
    const run = await waitForRun(response.headers.get('location')!);
    expect(run.status, offline.output()).toBe('failed');
    expect(run.steps.map((step) => [step.name, step.status]), JSON.stringify(run.steps.map((step) => step.error))).toEqual([
      ['crm_v2', 'succeeded'],
      ['idm', 'succeeded'],
      ['permit', 'failed'],
    ]);
    expect(run.steps[2]!.error).toMatch(/cannot read table "permit"\."licence"/);
    expect(run.error).toMatch(/permit failed: .*"permit"\."licence"/);
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'export/' }));
    const keys = (listed.Contents ?? []).map((o) => o.Key);
    expect(keys).toEqual(expect.arrayContaining(['export/crm_v2.tgz', 'export/idm.tgz']));
    expect(keys).not.toContain('export/permit.tgz');
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
