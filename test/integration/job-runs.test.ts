import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runStepInline } from '../../lib/jobs/job-functions';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { createExportJob } from '../../lib/jobs/export-job';
import { parseExportParams } from '../../lib/jobs/export-request';
import { createExportStepWork } from '../../lib/jobs/export-steps';
import { createStartSteps } from '../../lib/jobs/start-steps';
import { handleGetRunRequest, handleListRunsRequest } from '../../lib/jobs/handle-run-requests';
import { handleStartJobRequest } from '../../lib/jobs/handle-start-job-request';
import type { Job } from '../../lib/jobs/job';
import { parseJobWorkerEvent, runJobWorker } from '../../lib/jobs/run-job-worker';
import { createTimeLimitedJob } from '../../lib/jobs/time-limited-job';
import { WorkerEventError } from '../../lib/jobs/worker-event';
import { createRunLedger } from '../../lib/runs/run-ledger';
import type { RunLedger } from '../../lib/runs/run-ledger';
import { seedSampleDatabase } from '../../scripts/sample-database/seed-sample-database';
import { createMigratedTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';

/** The API's run flow and the worker's claim flow, on the real ledger in a real database. */

const LEASE_MS = 60_000;
const bare = { httpMethod: 'POST', body: null, isBase64Encoded: false, headers: {} };

let db: TestDatabase;
let ledger: RunLedger;

beforeEach(async () => {
  db = await createMigratedTestDatabase();
  ledger = createRunLedger(db.sql);
});

afterEach(async () => {
  await db.drop();
});

/** A job that does nothing but count its runs. */
function countingJob(name: Job['name'] = 'export'): Job & { runs: number } {
  const job = {
    name,
    runs: 0,
    parseParams: () => ({}),
    run: async () => {
      job.runs += 1;
      return { done: true };
    },
  };
  return job;
}

async function runRows(): Promise<{ status: string; trigger: string }[]> {
  return db.sql`select status, trigger from jobs.runs order by requested_at`;
}

describe('POST /jobs/<job> against the real ledger', () => {
  it('50 concurrent POSTs, sent before any worker finishes, give one 204, 49 409s and one run', async () => {
    const dispatched: string[] = [];
    const deps = { getLedger: async () => ledger, dispatch: async ({ runId }: { runId: string }) => void dispatched.push(runId) };
    const responses = await Promise.all(Array.from({ length: 50 }, () => handleStartJobRequest(countingJob(), bare, deps)));

    const accepted = responses.filter((r) => r.statusCode === 204);
    const conflicts = responses.filter((r) => r.statusCode === 409);
    expect(accepted).toHaveLength(1);
    expect(conflicts).toHaveLength(49);
    const runId = accepted[0]!.headers!.Location!.toString().replace('/jobs/runs/', '');
    for (const conflict of conflicts) expect(JSON.parse(conflict.body).activeRunId).toBe(runId);
    expect(dispatched).toEqual([runId]);
    expect(await runRows()).toEqual([{ status: 'queued', trigger: 'http' }]);
  });

  it('a failed dispatch answers 503 and leaves a failed run that blocks nothing', async () => {
    const failing = { getLedger: async () => ledger, dispatch: vi.fn(async () => Promise.reject(new Error('Lambda is unreachable'))) };
    const response = await handleStartJobRequest(countingJob(), bare, failing);
    expect(response.statusCode).toBe(503);
    const { runId } = JSON.parse(response.body) as { runId: string };
    const run = await ledger.get(runId);
    expect(run).toMatchObject({ status: 'failed', error: expect.stringContaining('Lambda is unreachable') });

    const next = await handleStartJobRequest(countingJob(), bare, { getLedger: async () => ledger, dispatch: async () => {} });
    expect(next.statusCode).toBe(204);
  });

  it('an expired lease becomes timed_out and the next POST starts a new run', async () => {
    const stuck = await ledger.enqueue('export', 'http');
    await ledger.claim(stuck.id, { job: 'export', leaseMs: LEASE_MS, requestId: 'req-1' });
    await db.sql`update jobs.runs set lease_expires_at = now() - interval '1 second' where id = ${stuck.id}`;

    const response = await handleStartJobRequest(countingJob(), bare, { getLedger: async () => ledger, dispatch: async () => {} });
    expect(response.statusCode).toBe(204);
    expect((await ledger.get(stuck.id))?.status).toBe('timed_out');
    expect((await runRows()).map((r) => r.status)).toEqual(['timed_out', 'queued']);
  });
});

describe('the worker', () => {
  it('a scheduled trigger while a run is active records a skipped run and does nothing else', async () => {
    const active = await ledger.enqueue('time-limited', 'http');
    const job = countingJob('time-limited');
    const outcome = await runJobWorker(job, { kind: 'new', trigger: 'schedule', params: {} }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    expect(outcome).toMatchObject({ status: 'skipped', activeRunId: active.id });
    expect(job.runs).toBe(0);
    expect(await runRows()).toEqual([
      { status: 'queued', trigger: 'http' },
      { status: 'skipped', trigger: 'schedule' },
    ]);
  });

  it('a scheduled trigger while a run is running (claimed, live lease) records a skipped run', async () => {
    const active = await ledger.enqueue('time-limited', 'http');
    await ledger.claim(active.id, { job: 'time-limited', leaseMs: LEASE_MS, requestId: 'req-running' });
    const job = countingJob('time-limited');
    const outcome = await runJobWorker(job, { kind: 'new', trigger: 'schedule', params: {} }, { leaseMs: LEASE_MS, requestId: 'req-schedule' }, { sql: db.sql, ledger });
    expect(outcome).toMatchObject({ status: 'skipped', activeRunId: active.id });
    expect(job.runs).toBe(0);
    expect(await runRows()).toEqual([
      { status: 'running', trigger: 'http' },
      { status: 'skipped', trigger: 'schedule' },
    ]);
  });

  it('a run still under a live lease is not run again by a second delivery', async () => {
    const run = await ledger.enqueue('export', 'http');
    await ledger.claim(run.id, { job: 'export', leaseMs: LEASE_MS });
    const job = countingJob();
    const outcome = await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    expect(outcome).toMatchObject({ status: 'not_claimed', reason: 'running_under_live_lease' });
    expect(job.runs).toBe(0);
  });

  it('a failed attempt is recorded and rethrown, and a retry of the same event runs it again', async () => {
    const run = await ledger.enqueue('export', 'http');
    let fail = true;
    const job: Job = {
      name: 'export',
      parseParams: () => ({}),
      run: async () => {
        if (fail) throw new Error('schema crm failed');
        return { ok: true };
      },
    };
    await expect(runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger })).rejects.toThrow('schema crm failed');
    expect(await ledger.get(run.id)).toMatchObject({ status: 'failed', error: 'schema crm failed', attempts: 1 });
    fail = false;
    await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    expect(await ledger.get(run.id)).toMatchObject({ status: 'succeeded', attempts: 2, result: { ok: true } });
  });

  it('refuses a malformed event before recording anything', async () => {
    // The worker reads its event once, with parseJobWorkerEvent, before it connects or records anything.
    expect(() => parseJobWorkerEvent(countingJob(), { runId: 'nope' })).toThrow(/uuid/);
    const exportParams = { ...countingJob(), parseParams: (input: Record<string, unknown> | undefined) => parseExportParams(input, ['crm', 'water']) };
    expect(() => parseJobWorkerEvent(exportParams, { schemas: 'crm' })).toThrow(WorkerEventError);
    expect(() => parseJobWorkerEvent(exportParams, { schemas: ['nope'] })).toThrow(/"nope"/);
    expect(await runRows()).toEqual([]);
  });

  it("keeps the job's error when its failure cannot be recorded; Lambda's retry of the request resumes the run", async () => {
    const run = await ledger.enqueue('export', 'http');
    const failing: Job = { ...countingJob(), run: async () => Promise.reject(new Error('S3 is having a bad day')) };
    const ledgerThatCannotFail = { ...ledger, fail: async () => Promise.reject(new Error('Connection terminated')) };
    await expect(
      runJobWorker(failing, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS, requestId: 'req-9' }, { sql: db.sql, ledger: ledgerThatCannotFail }),
    ).rejects.toThrow('S3 is having a bad day');
    expect(await ledger.get(run.id)).toMatchObject({ status: 'running', attempts: 1 });

    // The lease is still live, but the same request id marks Lambda's retry of the crashed attempt.
    const outcome = await runJobWorker(countingJob(), { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS, requestId: 'req-9' }, { sql: db.sql, ledger });
    expect(outcome).toMatchObject({ status: 'succeeded' });
    expect(await ledger.get(run.id)).toMatchObject({ status: 'succeeded', attempts: 2 });
  });

  it("Lambda's retries of a scheduled event resume its run, and a redelivery after success does nothing", async () => {
    const job = countingJob('time-limited');
    let failNext = true;
    const flaky: Job = {
      ...job,
      run: async (params, deps) => {
        if (failNext) {
          failNext = false;
          throw new Error('Connection terminated');
        }
        return job.run(params, deps);
      },
    };
    const scheduled = parseJobWorkerEvent(flaky, { trigger: 'schedule' });
    const attempt = () => runJobWorker(flaky, scheduled, { leaseMs: LEASE_MS, requestId: 'sched-req-1' }, { sql: db.sql, ledger });

    await expect(attempt()).rejects.toThrow('Connection terminated');
    await expect(attempt()).resolves.toMatchObject({ status: 'succeeded' });
    await expect(attempt()).resolves.toMatchObject({ status: 'not_claimed', reason: 'already_succeeded' });

    expect(job.runs).toBe(1);
    expect(await db.sql`select status, trigger, attempts from jobs.runs`).toEqual([{ status: 'succeeded', trigger: 'schedule', attempts: 2 }]);
    // A new scheduled event (another request) is a new run.
    await runJobWorker(flaky, scheduled, { leaseMs: LEASE_MS, requestId: 'sched-req-2' }, { sql: db.sql, ledger });
    expect(job.runs).toBe(2);
  });

  it("refuses another job's run: the time-limited worker does not run an export run", async () => {
    const exportRun = await ledger.enqueue('export', 'http');
    const timeLimited = countingJob('time-limited');
    await expect(runJobWorker(timeLimited, { kind: 'run', runId: exportRun.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger })).rejects.toThrow(
      new WorkerEventError(`No time-limited run has the id ${exportRun.id}`),
    );
    expect(timeLimited.runs).toBe(0);
    expect(await ledger.get(exportRun.id)).toMatchObject({ status: 'queued', attempts: 0 });
    // The export worker still can.
    const exporter = countingJob('export');
    await runJobWorker(exporter, { kind: 'run', runId: exportRun.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    expect(exporter.runs).toBe(1);
  });
});

describe('a redelivered event after success changes nothing', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startTestS3();
  });
  afterAll(async () => {
    await s3.close();
  });

  it('export: no second upload, one run row', async () => {
    await seedSampleDatabase(db.sql);
    const bucket = await s3.createBucket();
    const work = createExportStepWork({ bucket, prefix: 'export/' }, s3.client);
    // Each step on a client of its own, as the export runs steps inline (runStepInline).
    const startSteps = createStartSteps({ mode: 'inline' }, 2, (event) => runStepInline(work, event, { url: db.url }));
    const job = createExportJob({ schemas: ['crm', 'idm'] }, startSteps, { bound: 'unbounded' });
    const run = await ledger.enqueue('export', 'http');
    await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    const first = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'export/crm.tgz' }));

    await new Promise((resolve) => setTimeout(resolve, 1100)); // a re-upload would change Last-Modified
    const again = await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    expect(again).toMatchObject({ status: 'not_claimed', reason: 'already_succeeded' });
    const second = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'export/crm.tgz' }));
    expect(second.LastModified).toEqual(first.LastModified);
    expect(second.ETag).toEqual(first.ETag);
    expect(await runRows()).toEqual([{ status: 'succeeded', trigger: 'http' }]);
  });

  it('time-limited: no duplicate workflow rows, one run row', async () => {
    await seedSampleDatabase(db.sql);
    const job = createTimeLimitedJob({ days: 50, timeZone: 'Europe/London' });
    const run = await ledger.enqueue('time-limited', 'http');
    await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    const [{ count: before } = { count: -1 }] = await db.sql<{ count: number }[]>`select count(*)::int as count from water.charge_version_workflows`;
    expect(before).toBeGreaterThan(0);

    await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    const [{ count: after } = { count: -1 }] = await db.sql<{ count: number }[]>`select count(*)::int as count from water.charge_version_workflows`;
    expect(after).toBe(before);
    expect(await runRows()).toEqual([{ status: 'succeeded', trigger: 'http' }]);
  });
});

describe('GET routes', () => {
  it('GET /jobs/runs/{id}: the run, 404 for an unknown id, 400 for a non-uuid', async () => {
    const run = await ledger.enqueue('export', 'http', { schemas: ['crm'] });
    const ok = await handleGetRunRequest({ pathParameters: { id: run.id }, queryStringParameters: null }, async () => ledger);
    expect(ok.statusCode).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ id: run.id, job: 'export', status: 'queued', params: { schemas: ['crm'] } });

    const unknown = await handleGetRunRequest(
      { pathParameters: { id: '00000000-0000-4000-8000-000000000000' }, queryStringParameters: null },
      async () => ledger,
    );
    expect(unknown.statusCode).toBe(404);
    const bad = await handleGetRunRequest({ pathParameters: { id: 'latest' }, queryStringParameters: null }, async () => ledger);
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body).error).toMatch(/uuid/);
  });

  it('GET /jobs/{job}/runs: newest first, filtered and limited; 404 unknown job; 400 bad parameter', async () => {
    const first = await ledger.enqueue('export', 'http');
    await ledger.fail(first.id, 'boom');
    const second = await ledger.enqueue('export', 'schedule');
    const list = async (job: string, query: Record<string, string> | null) =>
      handleListRunsRequest({ pathParameters: { job }, queryStringParameters: query }, async () => ledger);

    const all = await list('export', null);
    expect(all.statusCode).toBe(200);
    expect(JSON.parse(all.body).runs.map((r: { id: string }) => r.id)).toEqual([second.id, first.id]);
    expect(JSON.parse((await list('export', { status: 'failed' })).body).runs.map((r: { id: string }) => r.id)).toEqual([first.id]);
    expect(JSON.parse((await list('export', { limit: '1' })).body).runs).toHaveLength(1);
    expect(JSON.parse((await list('time-limited', null)).body).runs).toEqual([]);

    expect((await list('reports', null)).statusCode).toBe(404);
    const badQueries: Record<string, string>[] = [{ limit: '0' }, { limit: '101' }, { limit: 'ten' }, { status: 'done' }, { order: 'asc' }];
    for (const query of badQueries) {
      const response = await list('export', query);
      expect(response.statusCode).toBe(400);
      expect(JSON.parse(response.body).error).toEqual(expect.any(String));
    }
  });
});
