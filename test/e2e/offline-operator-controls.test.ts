import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunWithSteps } from '../../lib/runs/run-ledger';
import { localApiKey, startOffline } from '../support/offline';
import type { Offline } from '../support/offline';
import { projectRoot } from '../support/packaged-template';
import { startSampleEnvironment } from '../support/sample-environment';
import { waitFor } from '../support/wait-for';
import type { SampleEnvironment } from '../support/sample-environment';

/**
 * What an operator reaches for (issue 23), through `serverless offline` with the real asynchronous
 * invokes: cancelling a run (one whose first schema's COPY waits on a lock, one still queued, one
 * ended, one unknown), pausing the time-limited schedule, and who asked for each run.
 */

const run = promisify(execFile);
let environment: SampleEnvironment;
let offline: Offline;
let tmp: string;

beforeAll(async () => {
  environment = await startSampleEnvironment();
  // The functions' temporary files go here, to be seen gone.
  tmp = await mkdtemp(join(tmpdir(), 'waj-cancel-tmp-'));
  offline = await startOffline({ DATABASE_URL: environment.db.url, EXPORT_BUCKET: environment.bucket, S3_ENDPOINT: environment.s3.endpoint, TMPDIR: tmp });
}, 180_000);

afterAll(async () => {
  await offline?.stop();
  await environment?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown) {
  return fetch(`${offline.httpUrl}${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: { 'x-api-key': localApiKey(), 'User-Agent': 'operator-controls-test/1.0', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
  });
}

async function getRun(id: string): Promise<RunWithSteps> {
  return (await (await call('GET', `/jobs/runs/${id}`)).json()) as RunWithSteps;
}

/** The emulator's latest output, for a wait that fails. */
const output = () => offline.output().slice(-6000);

async function invoke(functionName: string, payload: unknown): Promise<unknown> {
  const lambda = new LambdaClient({ endpoint: offline.lambdaEndpoint, region: 'eu-west-2', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    const answer = await lambda.send(new InvokeCommand({ FunctionName: `water-abstraction-jobs-dev-${functionName}`, Payload: Buffer.from(JSON.stringify(payload)) }));
    return JSON.parse(Buffer.from(answer.Payload!).toString());
  } finally {
    lambda.destroy();
  }
}

/**
 * What the functions still run on the sample database's server: a COPY, or any statement waiting
 * for a lock (the held schema's step waits at its first read of the locked table: the catalog read
 * of its definition, which locks the table as pg_dump's does, then its COPY).
 */
async function readsOnServer(): Promise<string[]> {
  const rows = await environment.db.sql<{ query: string }[]>`
    SELECT query FROM pg_stat_activity
    WHERE datname = ${environment.db.name} AND pid <> pg_backend_pid() AND state <> 'idle' AND (query ILIKE 'COPY%' OR wait_event_type = 'Lock')`;
  return rows.map((row) => row.query);
}

describe('cancelling a run', () => {
  it('an export whose first schema waits on a lock: within seconds the run and that step are cancelled, its reads are gone from the server, nothing uploaded for it, no temporary file left; the next POST gets 204', async () => {
    // Someone holds the first schema's first table: the export's COPY of it waits.
    const holder = postgres(environment.db.url, { max: 1, onnotice: () => {} });
    const [{ table } = { table: '' }] = await environment.db.sql<{ table: string }[]>`
      SELECT quote_ident(relname) AS table FROM pg_class WHERE relnamespace = 'water'::regnamespace AND relkind = 'r' ORDER BY relname COLLATE "C" LIMIT 1`;
    const lock = holder.begin(async (tx) => {
      await tx.unsafe(`LOCK TABLE water.${table} IN ACCESS EXCLUSIVE MODE`);
      await new Promise((resolve) => setTimeout(resolve, 60_000));
    });
    lock.catch(() => {});
    try {
      const response = await call('POST', '/jobs/export', { schemas: ['water', 'idm'] });
      expect(response.status, offline.output().slice(-3000)).toBe(204);
      const runId = response.headers.get('location')!.split('/').pop()!;
      await waitFor('the water step waiting on the lock', async () => {
        const [waiting] = await environment.db.sql`
          SELECT 1 FROM pg_stat_activity WHERE datname = ${environment.db.name} AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`;
        return waiting;
      }, { context: output });

      const cancelled = await call('POST', `/jobs/runs/${runId}/cancel`);
      expect(cancelled.status).toBe(202);
      const answer = (await cancelled.json()) as RunWithSteps;
      expect(answer).toMatchObject({ id: runId, status: 'cancelled', cancelledBy: { kind: 'http', userAgent: 'operator-controls-test/1.0' } });
      const asked = Date.now();

      const ended = await waitFor('the water step to end cancelled', async () => {
        const shown = await getRun(runId);
        return shown.steps.find((s) => s.name === 'water')?.status === 'cancelled' ? shown : undefined;
      }, { timeoutMs: 15_000, context: output });
      expect(Date.now() - asked, 'noticed within a few seconds').toBeLessThan(8_000);
      expect(ended.status).toBe('cancelled');
      expect(ended.error).toMatch(/^Cancelled by /);
      // Its statements were cancelled on the server, not left waiting behind the lock.
      expect(await waitFor('no read left', async () => ((await readsOnServer()).length === 0 ? true : undefined), { timeoutMs: 5_000, context: output })).toBe(true);
      const listed = await environment.s3.client.send(new ListObjectsV2Command({ Bucket: environment.bucket, Prefix: 'export/water' }));
      expect(listed.Contents ?? []).toEqual([]);
      // Nothing of the export's. The Serverless Framework's own process folder (`node-process-*`,
      // made while it compiles its config schema's validator on a machine that has no cached one,
      // removed when sls exits) shares this TMPDIR and is not the worker's.
      expect((await readdir(tmp)).filter((name) => !name.startsWith('node-process-'))).toEqual([]);

      // The run has ended: the next POST starts a new run (no 409).
      const next = await call('POST', '/jobs/export', { schemas: ['idm'] });
      expect(next.status).toBe(204);
      const nextRun = await waitFor('the next run to end', async () => {
        const shown = await getRun(next.headers.get('location')!.split('/').pop()!);
        return ['queued', 'running'].includes(shown.status) ? undefined : shown;
      }, { context: output });
      expect(nextRun.status).toBe('succeeded');

      // A redelivered step event for the cancelled run does nothing.
      expect(await invoke('exportSchemaWorker', { runId, step: 'water' })).toMatchObject({ status: 'not_claimed' });
      expect((await getRun(runId)).steps.find((s) => s.name === 'water')).toMatchObject({ status: 'cancelled', attempts: 1 });
    } finally {
      await holder.end({ timeout: 1 });
    }
  }, 180_000);

  it('a queued run (its worker not yet started) is cancelled at once, and its event then does nothing; an ended run is 409, an unknown one 404', async () => {
    const [queued] = await environment.db.sql<{ id: string }[]>`INSERT INTO jobs.runs (job, trigger) VALUES ('time-limited', 'http') RETURNING id`;
    const cancelled = await call('POST', `/jobs/runs/${queued!.id}/cancel`);
    expect(cancelled.status).toBe(202);
    expect(await cancelled.json()).toMatchObject({ status: 'cancelled', steps: [] });
    expect(await invoke('timeLimitedWorker', { runId: queued!.id })).toMatchObject({ status: 'not_claimed', reason: 'not_claimable' });
    expect(await getRun(queued!.id)).toMatchObject({ status: 'cancelled', attempts: 0 });

    const again = await call('POST', `/jobs/runs/${queued!.id}/cancel`);
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: expect.stringMatching(/already ended \(cancelled\)/), status: 'cancelled' });
    const unknown = await call('POST', '/jobs/runs/00000000-0000-4000-8000-000000000000/cancel');
    expect(unknown.status).toBe(404);
    expect((await call('POST', '/jobs/runs/latest/cancel')).status).toBe(400);
    expect((await call('GET', `/jobs/runs/${queued!.id}/cancel`)).status).toBe(405);
    // Listed under its status.
    const listed = (await (await call('GET', '/jobs/time-limited/runs?status=cancelled')).json()) as { runs: { id: string }[] };
    expect(listed.runs.map((r) => r.id)).toContain(queued!.id);
  });
});

describe('pausing a schedule', () => {
  async function invokeLocal(data: string) {
    const { stdout } = await run('npx', ['serverless', 'invoke', 'local', '--function', 'timeLimitedWorker', '--data', data], {
      cwd: projectRoot,
      env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', DATABASE_URL: environment.db.url },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 180_000,
    });
    return stdout;
  }
  const workflowRows = async () => (await environment.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM water.charge_version_workflows`)[0]!.n;

  it('paused, a scheduled time-limited invocation records a skipped run naming the pause and adds no rows; resumed, the next one runs', async () => {
    const paused = await call('PUT', '/jobs/time-limited/schedule', { paused: true });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toMatchObject({ job: 'time-limited', schedule: { paused: true, pausedBy: { kind: 'http' }, pausedAt: expect.any(String) } });
    const listing = (await (await call('GET', '/jobs/time-limited/runs')).json()) as { schedule: { paused: boolean; pausedBy: unknown } };
    expect(listing.schedule).toMatchObject({ paused: true, pausedBy: { kind: 'http', userAgent: 'operator-controls-test/1.0' } });

    const before = await workflowRows();
    expect(await invokeLocal('{"trigger":"schedule"}')).toMatch(/"status": "skipped"[\s\S]*"reason": "paused"/);
    expect(await workflowRows()).toBe(before);
    const [skipped] = await environment.db.sql<{ status: string; trigger: string; result: { reason: string; pause: { by: { kind: string } } } }[]>`
      SELECT status, trigger, result FROM jobs.runs WHERE job = 'time-limited' ORDER BY requested_at DESC LIMIT 1`;
    expect(skipped).toMatchObject({ status: 'skipped', trigger: 'schedule', result: { reason: 'paused', pause: { by: { kind: 'http' } } } });

    const resumed = await call('PUT', '/jobs/time-limited/schedule', { paused: false });
    expect(resumed.status).toBe(200);
    expect(await resumed.json()).toMatchObject({ schedule: { paused: false } });
    expect(await invokeLocal('{"trigger":"schedule"}')).toContain('"status": "succeeded"');
    expect(await workflowRows()).toBeGreaterThan(before);
  }, 240_000);

  it('refuses a job with no schedule (409), an unknown job (404) and a body other than {"paused": boolean} (400)', async () => {
    expect((await call('PUT', '/jobs/restore/schedule', { paused: true })).status).toBe(409);
    expect((await call('PUT', '/jobs/nope/schedule', { paused: true })).status).toBe(404);
    for (const body of [{ paused: 'yes' }, {}, { paused: true, until: 'monday' }]) expect((await call('PUT', '/jobs/time-limited/schedule', body)).status).toBe(400);
    expect((await call('POST', '/jobs/time-limited/schedule', { paused: true })).status).toBe(405);
  });
});

describe('who asked', () => {
  it('an HTTP run records the caller (its key\'s id, address and user agent), never the key', async () => {
    const response = await call('POST', '/jobs/time-limited');
    expect(response.status).toBe(204);
    const id = response.headers.get('location')!.split('/').pop()!;
    const shown = await getRun(id);
    expect(shown.requestedBy).toMatchObject({ kind: 'http', userAgent: 'operator-controls-test/1.0', sourceIp: expect.stringMatching(/127\.0\.0\.1|::1/) });
    const [row] = await environment.db.sql<{ text: string }[]>`SELECT to_jsonb(r)::text AS text FROM jobs.runs r WHERE id = ${id}`;
    expect(row!.text).not.toContain(localApiKey());
    expect(JSON.stringify(shown)).not.toContain(localApiKey());
  });
});
