import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EXPORT_SCHEMAS } from '../../lib/config';
import type { RunWithSteps } from '../../lib/runs/run-ledger';
import { downloadObject } from '../fixtures/export/tarball';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { describeSchema } from '../support/describe-schema';
import { localApiKey, startOffline, verifyUploadsThroughOffline } from '../support/offline';
import type { Offline } from '../support/offline';
import { leftovers, rewriteTarball, rowsOf, stateOf } from '../support/restore-checks';
import { startSampleEnvironment } from '../support/sample-environment';
import { waitFor } from '../support/wait-for';
import type { SampleEnvironment } from '../support/sample-environment';

/**
 * The fallback end to end through `serverless offline` (issue "The fallback, end to end"): HTTP into
 * the emulated API Gateway, the real asynchronous invokes of restoreWorker and of one
 * restoreSchemaWorker per schema through the emulated Lambda API, the tarballs the export uploaded
 * to a real S3 server (each checked by exportVerifier, as EventBridge would start it), restored into
 * a second database: the reporting team's.
 */

const SCHEMAS = [...DEFAULT_EXPORT_SCHEMAS];
let environment: SampleEnvironment;
let target: TestDatabase;
let offline: Offline;
/** Uploads are handed to exportVerifier as EventBridge would, unless a test stops that for a while. */
let forwarding = true;

beforeAll(async () => {
  environment = await startSampleEnvironment();
  target = await createTestDatabase('waj_e2e_reporting');
  offline = await startOffline({
    DATABASE_URL: environment.db.url,
    EXPORT_BUCKET: environment.bucket,
    S3_ENDPOINT: environment.s3.endpoint,
    RESTORE_DATABASE_URL: target.url,
  });
  verifyUploadsThroughOffline(offline, environment, () => forwarding);
}, 180_000);

afterAll(async () => {
  await offline?.stop();
  await target?.drop();
  await environment?.stop();
});

async function call(method: string, path: string, body?: unknown) {
  return fetch(`${offline.httpUrl}${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: { 'x-api-key': localApiKey(), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
  });
}

async function getRun(id: string): Promise<RunWithSteps> {
  const response = await call('GET', `/jobs/runs/${id}`);
  expect(response.status).toBe(200);
  return (await response.json()) as RunWithSteps;
}

/** The emulator's latest output, for a wait that fails. */
const output = () => offline.output().slice(-6000);

const ended = (id: string) =>
  waitFor(
    `run ${id} to end`,
    async () => {
      const run = await getRun(id);
      return ['queued', 'running'].includes(run.status) ? undefined : run;
    },
    { timeoutMs: 150_000, context: output },
  );

async function started(job: string, body?: unknown): Promise<string> {
  const response = await call('POST', `/jobs/${job}`, body);
  expect(response.status, offline.output().slice(-4000)).toBe(204);
  return response.headers.get('location')!.split('/').pop()!;
}

async function expectTargetEqualsSource(): Promise<void> {
  for (const schema of SCHEMAS) expect(await describeSchema(target.sql, schema, SCHEMAS), schema).toEqual(await describeSchema(environment.db.sql, schema, SCHEMAS));
  expect(await rowsOf(target.sql, SCHEMAS)).toEqual(await rowsOf(environment.db.sql, SCHEMAS));
  expect(await leftovers(target.sql)).toEqual([]);
}

describe('the restore job through serverless offline', () => {
  it('export, then POST /jobs/restore: one step per schema, the run succeeds and is listed, the target equals the source; a second POST meanwhile is 409', async () => {
    const exported = await ended(await started('export'));
    expect(exported.status, exported.error ?? '').toBe('succeeded');

    const runId = await started('restore');
    const second = await call('POST', '/jobs/restore');
    expect(second.status).toBe(409);
    expect(await second.json()).toMatchObject({ activeRunId: runId });

    const run = await ended(runId);
    expect(run.status, `${run.error}\n${offline.output().slice(-4000)}`).toBe('succeeded');
    expect(run.steps.map((s) => [s.name, s.status])).toEqual(SCHEMAS.map((s) => [s, 'succeeded']));
    expect(run.steps.filter((s) => s.result?.replaced)).toHaveLength(1);
    expect(run.steps.every((s) => s.result?.exportRunId === exported.id)).toBe(true);
    expect(run.asOf).toBe(exported.asOf);
    expect(run.progress).toMatchObject({ schemasDone: 6, schemasTotal: 6 });
    const listed = (await (await call('GET', '/jobs/restore/runs?limit=5')).json()) as { runs: { id: string; status: string }[]; schemas: string[] };
    expect(listed.runs[0]).toMatchObject({ id: runId, status: 'succeeded' });
    expect(listed.schemas).toEqual(SCHEMAS);
    await expectTargetEqualsSource();
  }, 300_000);

  it('{"restore": true} on an export: the restore starts once every tarball is verified, and the target ends equal to the source', async () => {
    const [{ changed } = { changed: 0 }] = await environment.db.sql<{ changed: number }[]>`
      WITH c AS (UPDATE water.licences SET licence_ref = licence_ref || '/2' WHERE licence_id = (SELECT min(licence_id::text)::uuid FROM water.licences) RETURNING 1)
      SELECT count(*)::int AS changed FROM c`;
    expect(changed).toBe(1);
    const exportRunId = await started('export', { restore: true });
    const exported = await ended(exportRunId);
    expect(exported.status, exported.error ?? '').toBe('succeeded');
    const restoreRunId = await waitFor('the restore the export started', async () => {
      const { result } = await getRun(exportRunId);
      return (result as { restore?: { runId?: string } } | null)?.restore?.runId;
    }, { context: output });
    const verified = await getRun(exportRunId);
    expect(verified.steps.map((s) => (s.verification as { status?: string } | undefined)?.status)).toEqual(SCHEMAS.map(() => 'verified'));
    const restore = await ended(restoreRunId);
    expect(restore.status, restore.error ?? '').toBe('succeeded');
    expect(restore.params).toEqual({ schemas: SCHEMAS, exportRunId });
    expect(restore.requestedBy).toEqual({ kind: 'export', exportRunId });
    await expectTargetEqualsSource();
  }, 300_000);

  it('a tarball altered after the export (not yet checked by the verifier): its step fails naming the table, the run fails, the target still holds the previous restore', async () => {
    const before = await stateOf(target.sql, SCHEMAS);
    const key = 'export/water.tgz';
    const original = await downloadObject(environment.s3.client, environment.bucket, key);
    let table: string | undefined;
    const changed = await rewriteTarball(original, (entries) =>
      entries.map((entry) => {
        // One digit of the first data row of the first CSV that has one.
        const text = entry.content.toString();
        const body = text.indexOf('\n') + 1;
        const digit = body > 0 ? text.slice(body).search(/\d/) : -1;
        if (table || !entry.name.endsWith('.csv') || digit < 0) return entry;
        table = entry.name.slice('water/'.length, -'.csv'.length);
        const at = body + digit;
        return { ...entry, content: Buffer.from(`${text.slice(0, at)}${(Number(text[at]) + 1) % 10}${text.slice(at + 1)}`) };
      }),
    );
    expect(table).toBeDefined();
    const [{ runId } = { runId: '' }] = await environment.db.sql<{ runId: string }[]>`
      SELECT id AS "runId" FROM jobs.runs WHERE job = 'export' AND status = 'succeeded' ORDER BY finished_at DESC LIMIT 1`;
    forwarding = false;
    try {
      // Its metadata kept, so it still names its export run: only its bytes differ from its manifest.
      await environment.s3.client.send(new PutObjectCommand({ Bucket: environment.bucket, Key: key, Body: changed, Metadata: { 'run-id': runId, schema: 'water' } }));
      const run = await ended(await started('restore'));
      expect(run.status).toBe('failed');
      const water = run.steps.find((s) => s.name === 'water');
      expect(water?.status).toBe('failed');
      expect(water?.error).toMatch(new RegExp(`table "${table}".*sha256 expected`));
      expect(run.error).toMatch(new RegExp(`water failed: .*table "${table}"`));
      // The step that closes the run drops the run's staging schemas right after it records the close.
      await waitFor('the staging schemas to be dropped', async () => ((await leftovers(target.sql)).length === 0 ? true : undefined), { timeoutMs: 15_000, context: output });
      expect(await stateOf(target.sql, SCHEMAS)).toEqual(before);
    } finally {
      await environment.s3.client.send(new PutObjectCommand({ Bucket: environment.bucket, Key: key, Body: original, Metadata: { 'run-id': runId, schema: 'water' } }));
      forwarding = true;
    }
  }, 300_000);
});
