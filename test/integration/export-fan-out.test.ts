import { randomBytes } from 'node:crypto';
import { runStepInline } from '../../lib/jobs/job-functions';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { logger } from '../../lib/logger';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../lib/clients/s3';
import { DEFAULT_EXPORT_SCHEMAS } from '../../lib/config';
import { createExportJob } from '../../lib/jobs/export-job';
import { createExportStepWork } from '../../lib/jobs/export-steps';
import { createStartSteps } from '../../lib/jobs/start-steps';
import { handleGetRunRequest } from '../../lib/jobs/handle-run-requests';
import { handleStartJobRequest } from '../../lib/jobs/handle-start-job-request';
import { runJobWorker } from '../../lib/jobs/run-job-worker';
import { runStepWorker } from '../../lib/jobs/run-step-worker';
import type { StepWork } from '../../lib/jobs/run-step-worker';
import { createRunLedger } from '../../lib/runs/run-ledger';
import type { RunLedger, RunWithSteps } from '../../lib/runs/run-ledger';
import { RunCancelledError } from '../../lib/runs/cancel-watch';
import { createStepLedger } from '../../lib/runs/step-ledger';
import type { StepLedger } from '../../lib/runs/step-ledger';
import type { StepEvent } from '../../lib/jobs/dispatch';
import { adminUrl } from '../support/database';
import type { TestDatabase } from '../support/database';
import { startSampleEnvironment } from '../support/sample-environment';
import type { SampleEnvironment } from '../support/sample-environment';
import type { TestS3 } from '../support/s3';
import { connectDatabase } from '../../lib/clients/database';

/**
 * The export's fan-out on the real ledger, a real database and a real S3 server: one step per
 * schema, each claimed and leased like a run, and the run closed by whichever step ends last.
 */

const LEASE_MS = 60_000;
const THREE = ['water', 'returns', 'crm'];
const bare = { httpMethod: 'POST', body: null, isBase64Encoded: false, headers: {} };

let environment: SampleEnvironment;
let db: TestDatabase;
let s3: TestS3;
let bucket: string;
let ledger: RunLedger;
let steps: StepLedger;

beforeAll(async () => {
  environment = await startSampleEnvironment();
  ({ db, s3 } = environment);
  ledger = createRunLedger(db.sql);
  steps = createStepLedger(db.sql);
}, 60_000);

afterAll(async () => {
  await environment?.stop();
});

beforeEach(async () => {
  await db.sql`TRUNCATE jobs.runs CASCADE`;
  bucket = await s3.createBucket();
});

/** The coordinator with its steps carried out in this process (inline), as `sls invoke local` does. */
function inlineExport(url: string = db.url, work: StepWork = createExportStepWork({ bucket, prefix: 'export/' }, s3.client)) {
  // Each step on a client of its own, as runStepInline (and Lambda) give it: steps sharing the
  // coordinator's pool could each hold a connection and wait for another.
  const startSteps = createStartSteps({ mode: 'inline' }, 3, (event) => runStepInline(work, event, { url }));
  return createExportJob({ schemas: [...DEFAULT_EXPORT_SCHEMAS] }, startSteps, { bound: 'unbounded' });
}

/**
 * The coordinator in Lambda mode: steps are only handed over (recorded here), not carried out.
 * It lets the run's snapshot go at once unless told to hold it (`holdMs`), for tests of the
 * ledger whose steps import nothing.
 */
function handOverOnly(holdMs = 0) {
  const handed: StepEvent[] = [];
  const job = createExportJob(
    { schemas: THREE },
    async (events) => {
      handed.push(...events);
      return events.map(() => ({ status: 'fulfilled', value: undefined }) as const);
    },
    { bound: 'lease', atMostMs: holdMs, pollMs: 50 },
  );
  return { job, handed };
}

async function keys(): Promise<string[]> {
  const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (listed.Contents ?? []).map((o) => o.Key!).sort();
}

async function getRun(id: string): Promise<RunWithSteps> {
  const response = await handleGetRunRequest({ pathParameters: { id }, queryStringParameters: null }, async () => ledger);
  expect(response.statusCode).toBe(200);
  return JSON.parse(response.body) as RunWithSteps;
}

describe('an export run fanned out into steps', () => {
  it('three schemas: three steps, three tarballs named for their run, the run succeeded, and GET shows the steps in order', async () => {
    const run = await ledger.enqueue('export', 'http', { schemas: ['crm', 'water', 'returns'].sort() });
    const info = vi.spyOn(logger, 'info');
    const outcome = await runJobWorker(inlineExport(), { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    expect(outcome).toMatchObject({ status: 'succeeded' });
    // The replaced service's last line, once, with the run's time.
    const complete = info.mock.calls.filter(([message]) => message === 'DB export complete');
    info.mockRestore();
    expect(complete).toEqual([['DB export complete', expect.objectContaining({ runId: run.id, status: 'succeeded', timeTakenMs: expect.any(Number) })]]);
    expect(await keys()).toEqual(['export/crm.tgz', 'export/returns.tgz', 'export/water.tgz']);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'export/returns.tgz' }));
    expect(head.Metadata).toEqual({ 'run-id': run.id, schema: 'returns' });

    const shown = await getRun(run.id);
    expect(shown.status).toBe('succeeded');
    // The configured order, whatever the caller's order.
    expect(shown.steps.map((s) => s.name)).toEqual(['water', 'returns', 'crm']);
    for (const step of shown.steps) {
      expect(Object.keys(step).sort()).toEqual(['attempts', 'error', 'finishedAt', 'name', 'result', 'startedAt', 'status']);
      expect(step).toMatchObject({ status: 'succeeded', attempts: 1, error: null, result: { key: `export/${step.name}.tgz` } });
      expect(step.result!.tables).toBeGreaterThan(0);
      expect(step.result!.compressedBytes).toBeGreaterThan(0);
    }
    const sum = (field: 'tables' | 'rows' | 'bytes') => shown.steps.reduce((total, s) => total + s.result![field], 0);
    expect(shown.progress).toMatchObject({ schemasDone: 3, schemasTotal: 3, tables: sum('tables'), rows: sum('rows'), bytes: sum('bytes') });
  });

  it('re-running one schema is a run with one step', async () => {
    const response = await handleStartJobRequest(
      inlineExport(),
      { ...bare, body: '{"schemas":["returns"]}', headers: { 'Content-Type': 'application/json' } },
      {
        getLedger: async () => ledger,
        dispatch: async (event) => void (await runJobWorker(inlineExport(), { kind: 'run', runId: event.runId }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger })),
      },
    );
    expect(response.statusCode).toBe(204);
    const shown = await getRun(response.headers!.Location!.toString().split('/').pop()!);
    expect(shown).toMatchObject({ status: 'succeeded', steps: [{ name: 'returns', status: 'succeeded' }] });
    expect(await keys()).toEqual(['export/returns.tgz']);
  });

  it('a table the export role cannot read fails its schema naming it; the other schemas are uploaded; the run fails naming it', async () => {
    const role = `waj_reader_${randomBytes(4).toString('hex')}`;
    await db.sql.unsafe(`CREATE ROLE ${role} LOGIN`);
    let readerSql: Sql | undefined;
    try {
      for (const schema of ['water', 'returns', 'crm', 'jobs']) {
        await db.sql.unsafe(`GRANT USAGE ON SCHEMA ${schema} TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
      }
      await db.sql.unsafe(`GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA jobs TO ${role}; REVOKE SELECT ON returns.lines FROM ${role}`);
      const url = new URL(db.url);
      url.username = role;
      readerSql = connectDatabase(url.toString(), { max: 4 });

      const run = await ledger.enqueue('export', 'http', { schemas: THREE });
      const readerLedger = createRunLedger(readerSql);
      await expect(
        runJobWorker(inlineExport(url.toString()), { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: readerSql, ledger: readerLedger }),
      ).rejects.toThrow(/returns/);

      expect(await keys()).toEqual(['export/crm.tgz', 'export/water.tgz']);
      const shown = await getRun(run.id);
      expect(shown.status).toBe('failed');
      const failed = shown.steps.find((s) => s.name === 'returns')!;
      expect(failed).toMatchObject({ status: 'failed', result: null });
      expect(failed.error).toMatch(new RegExp(`cannot read table "returns"\\."lines"`));
      expect(shown.steps.filter((s) => s.status === 'succeeded').map((s) => s.name)).toEqual(['water', 'crm']);
      expect(shown.error).toMatch(/1 of 3 steps did not succeed\. returns failed: .*"returns"\."lines"/);
    } finally {
      await readerSql?.end();
      await db.sql.unsafe(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  it('a step whose lease lapses is timed_out with its run, and the next POST starts a new run', async () => {
    const { job } = handOverOnly();
    const run = await ledger.enqueue('export', 'http');
    const outcome = await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    expect(outcome).toMatchObject({ status: 'running', steps: THREE });
    await steps.claim(run.id, 'water', { leaseMs: LEASE_MS, requestId: 'req-water' });
    for (const name of ['returns', 'crm']) {
      const claim = await steps.claim(run.id, name, { leaseMs: LEASE_MS });
      await steps.finish(claim.step!.id, { status: 'succeeded', result: { key: `export/${name}.tgz`, tables: 1, rows: 1, bytes: 1, compressedBytes: 1 } });
    }
    // water's worker stopped at the Lambda timeout: nobody will finish it.
    await db.sql`UPDATE jobs.run_steps SET lease_expires_at = now() - interval '1 second' WHERE name = 'water'`;
    expect((await ledger.get(run.id))?.status).toBe('running');

    const next = await handleStartJobRequest(handOverOnly().job, bare, { getLedger: async () => ledger, dispatch: async () => {} });
    expect(next.statusCode).toBe(204);
    const shown = await getRun(run.id);
    expect(shown.status).toBe('timed_out');
    expect(shown.steps.find((s) => s.name === 'water')).toMatchObject({ status: 'timed_out', error: expect.stringMatching(/lease expired/) });
    expect(shown.error).toMatch(/water timed out/);
    expect(await db.sql`SELECT status FROM jobs.runs ORDER BY requested_at`).toEqual([{ status: 'timed_out' }, { status: 'queued' }]);
  });

  it('a step queued longer than its event can live is timed_out, and so is the run', async () => {
    const { job } = handOverOnly();
    const run = await ledger.enqueue('export', 'http');
    await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    await db.sql`UPDATE jobs.run_steps SET queued_at = now() - interval '66 minutes' WHERE name = 'crm'`;
    await db.sql`UPDATE jobs.run_steps SET status = 'succeeded', result = '{"tables":1,"rows":1,"bytes":1,"compressedBytes":1,"key":"k"}' WHERE name <> 'crm'`;
    await ledger.enqueue('export', 'http');
    expect(await getRun(run.id)).toMatchObject({
      status: 'timed_out',
      steps: [{ status: 'succeeded' }, { status: 'succeeded' }, { name: 'crm', status: 'timed_out', error: expect.stringMatching(/never started/) }],
    });
  });

  it('answers 409 naming the run while any step is queued or running, and not once the last has ended', async () => {
    const { job, handed } = handOverOnly();
    const run = await ledger.enqueue('export', 'http');
    await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    expect(handed).toEqual(THREE.map((step) => ({ runId: run.id, step })));
    const post = () => handleStartJobRequest(handOverOnly().job, bare, { getLedger: async () => ledger, dispatch: async () => {} });

    const done = { status: 'succeeded', result: { key: 'k', tables: 1, rows: 1, bytes: 1, compressedBytes: 1 } } as const;
    for (const name of THREE) {
      const conflict = await post();
      expect(conflict.statusCode).toBe(409);
      expect(JSON.parse(conflict.body)).toMatchObject({ activeRunId: run.id });
      const claim = await steps.claim(run.id, name, { leaseMs: LEASE_MS });
      expect((await post()).statusCode).toBe(409);
      await steps.finish(claim.step!.id, done);
    }
    expect((await ledger.get(run.id))?.status).toBe('succeeded');
    expect((await post()).statusCode).toBe(204);
  });

  it('GET shows a running step with its latest progress (the dashboard draws its bar from it), an ended one with its result only', async () => {
    const { job } = handOverOnly();
    const run = await ledger.enqueue('export', 'http');
    await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    const claim = await steps.claim(run.id, 'returns', { leaseMs: LEASE_MS });
    await steps.reportProgress(claim.step!.id, { tablesDone: 2, rows: 1234, bytes: 56789 });
    const running = await getRun(run.id);
    expect(running.steps.map((s) => [s.name, s.status, s.progress])).toEqual([
      ['water', 'queued', undefined],
      ['returns', 'running', { tablesDone: 2, rows: 1234, bytes: 56789 }],
      ['crm', 'queued', undefined],
    ]);
    expect(running.progress).toMatchObject({ schemasDone: 0, schemasTotal: 3, tables: 2, rows: 1234, bytes: 56789 });

    await steps.finish(claim.step!.id, { status: 'succeeded', result: { key: 'export/returns.tgz', tables: 3, rows: 2000, bytes: 90000, compressedBytes: 9000 } });
    const returns = (await getRun(run.id)).steps.find((s) => s.name === 'returns')!;
    expect(Object.keys(returns).sort()).toEqual(['attempts', 'error', 'finishedAt', 'name', 'result', 'startedAt', 'status']);
    expect(returns.result).toMatchObject({ tables: 3, rows: 2000, bytes: 90000 });
  });
});

describe('the coordinator', () => {
  it("Lambda's retry of a crashed coordinator (same request id) takes the run over: no second snapshot; the steps still queued fail naming the lost one", async () => {
    const run = await ledger.enqueue('export', 'http');
    const first = handOverOnly();
    await runJobWorker(first.job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS, requestId: 'coord-1' }, { sql: db.sql, ledger });
    const asOf = (await ledger.get(run.id))?.asOf;
    expect(asOf).toEqual(expect.any(String));
    await steps.claim(run.id, 'water', { leaseMs: LEASE_MS, requestId: 'step-w' });

    const retry = handOverOnly();
    const outcome = await runJobWorker(retry.job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS, requestId: 'coord-1' }, { sql: db.sql, ledger });
    expect(outcome).toMatchObject({ status: 'running' });
    expect(retry.handed).toEqual([]);
    expect((await steps.listSteps(run.id)).map((s) => [s.name, s.status, /snapshot is gone/.test(s.error ?? '')])).toEqual([
      ['water', 'running', false],
      ['returns', 'failed', true],
      ['crm', 'failed', true],
    ]);
    // The run keeps its one moment.
    expect((await ledger.get(run.id))?.asOf).toBe(asOf);
    // A redelivery with a new request id finds the run running under its (extended) lease.
    const again = handOverOnly();
    await expect(runJobWorker(again.job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS, requestId: 'coord-2' }, { sql: db.sql, ledger })).resolves.toMatchObject({
      status: 'not_claimed',
      reason: 'running_under_live_lease',
    });
    expect(again.handed).toEqual([]);
  });

  it('fails a step it could not hand over, naming the cause; the run fails once every step has ended', async () => {
    const job = createExportJob(
      { schemas: THREE },
      async (events) =>
        events.map((e) => (e.step === 'returns' ? ({ status: 'rejected', reason: new Error('Invoking failed: throttled') } as const) : ({ status: 'fulfilled', value: undefined } as const))),
      { bound: 'lease', atMostMs: 0 },
    );
    const run = await ledger.enqueue('export', 'http');
    await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    expect((await steps.listSteps(run.id)).map((s) => [s.name, s.status, s.error])).toEqual([
      ['water', 'queued', null],
      ['returns', 'failed', 'Could not hand the step to its worker: Invoking failed: throttled'],
      ['crm', 'queued', null],
    ]);
    const ok: StepWork = async () => ({ key: 'k', tables: 1, rows: 1, bytes: 1, compressedBytes: 1 });
    for (const name of ['water', 'crm']) {
      await runStepWorker({ runId: run.id, step: name }, ok, { leaseMs: LEASE_MS, maxAttempts: 1 }, { sql: db.sql, steps });
    }
    expect(await ledger.get(run.id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/returns failed: Could not hand/) });

    // A late redelivery of the coordinator's event resumes the failed run as runs are, finds
    // every step ended, and closes it again at once rather than leave it running.
    const late = handOverOnly();
    await expect(runJobWorker(late.job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS, requestId: 'late' }, { sql: db.sql, ledger })).rejects.toThrow(
      /returns failed/,
    );
    expect(late.handed).toEqual([]);
    expect(await ledger.get(run.id)).toMatchObject({ status: 'failed', attempts: 2 });
  });
});

describe('a redelivered step event', () => {
  it('with the same request id or a new one, after success: no second upload, one result', async () => {
    // The coordinator holds the run's snapshot while the steps are delivered (as in Lambda).
    const { job } = handOverOnly(LEASE_MS);
    const run = await ledger.enqueue('export', 'http', { schemas: ['crm'] });
    const coordinating = runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    const work = createExportStepWork({ bucket, prefix: 'export/' }, s3.client);
    let uploads = 0;
    const counted: StepWork = async (...args) => {
      uploads += 1;
      return work(...args);
    };
    const deliver = (requestId: string) =>
      runStepWorker({ runId: run.id, step: 'crm' }, counted, { leaseMs: LEASE_MS, maxAttempts: 2, requestId }, { sql: db.sql, steps });

    while ((await steps.listSteps(run.id)).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(deliver('req-1')).resolves.toMatchObject({ status: 'succeeded' });
    const first = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'export/crm.tgz' }));
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a re-upload would change Last-Modified
    await expect(deliver('req-1')).resolves.toMatchObject({ status: 'not_claimed', reason: 'already_succeeded' });
    await expect(deliver('req-2')).resolves.toMatchObject({ status: 'not_claimed', reason: 'already_succeeded' });

    expect(uploads).toBe(1);
    await coordinating;
    const second = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'export/crm.tgz' }));
    expect([second.ETag, second.LastModified]).toEqual([first.ETag, first.LastModified]);
    const rows = await db.sql`SELECT name, status, attempts FROM jobs.run_steps WHERE name = 'crm'`;
    expect(rows).toEqual([{ name: 'crm', status: 'succeeded', attempts: 1 }]);
  });

  it('with a new request id while the step runs under a live lease: not run again', async () => {
    const { job } = handOverOnly();
    const run = await ledger.enqueue('export', 'http');
    await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    await steps.claim(run.id, 'water', { leaseMs: LEASE_MS, requestId: 'req-1' });
    let ran = 0;
    const outcome = await runStepWorker(
      { runId: run.id, step: 'water' },
      async () => {
        ran += 1;
        return { key: 'k', tables: 0, rows: 0, bytes: 0, compressedBytes: 0 };
      },
      { leaseMs: LEASE_MS, maxAttempts: 2, requestId: 'req-2' },
      { sql: db.sql, steps },
    );
    expect(outcome).toMatchObject({ status: 'not_claimed', reason: 'running_under_live_lease' });
    expect(ran).toBe(0);
  });

  it("Lambda's retry: a crashed attempt (same request id) is taken over; a failed attempt waits queued for the retry, the last one fails the run", async () => {
    const { job } = handOverOnly();
    const run = await ledger.enqueue('export', 'http');
    await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    const failing: StepWork = async () => Promise.reject(new Error('S3 is having a bad day'));
    const attempt = (name: string, requestId: string, work: StepWork = failing) =>
      runStepWorker({ runId: run.id, step: name }, work, { leaseMs: LEASE_MS, maxAttempts: 2, requestId }, { sql: db.sql, steps });

    // Crashed: left running under a live lease; the same request id takes it over.
    await steps.claim(run.id, 'water', { leaseMs: LEASE_MS, requestId: 'req-w' });
    const ok: StepWork = async () => ({ key: 'export/water.tgz', tables: 1, rows: 2, bytes: 3, compressedBytes: 4 });
    await expect(attempt('water', 'req-w', ok)).resolves.toMatchObject({ status: 'succeeded' });
    expect((await steps.listSteps(run.id))[0]).toMatchObject({ status: 'succeeded', attempts: 2 });

    // First attempt fails: queued again with its cause, the run still running.
    await expect(attempt('returns', 'req-r')).rejects.toThrow('S3 is having a bad day');
    expect((await steps.listSteps(run.id))[1]).toMatchObject({ status: 'queued', attempts: 1, error: 'S3 is having a bad day' });
    expect((await ledger.get(run.id))?.status).toBe('running');
    // Lambda's retry succeeds.
    await expect(attempt('returns', 'req-r', ok)).resolves.toMatchObject({ status: 'succeeded' });

    // Both attempts fail: the step fails for good, and as the last step it closes the run.
    await expect(attempt('crm', 'req-c')).rejects.toThrow();
    await expect(attempt('crm', 'req-c')).rejects.toThrow();
    const shown = await getRun(run.id);
    expect(shown.steps[2]).toMatchObject({ name: 'crm', status: 'failed', attempts: 2, error: 'S3 is having a bad day' });
    expect(shown).toMatchObject({ status: 'failed', error: '1 of 3 steps did not succeed. crm failed: S3 is having a bad day' });
    // A late redelivery changes nothing.
    await expect(attempt('crm', 'req-c2')).resolves.toMatchObject({ status: 'not_claimed', reason: 'not_claimable' });
  });
});

describe('a cancel as a step puts its tarball at the key', () => {
  /**
   * One crm step (its tarball is one part) whose S3 client cancels the run `when` asked: while the
   * part is sent (after the last table was read; the cancel watch asks only once a second), or
   * once the object has appeared.
   */
  async function cancelDuringUpload(when: 'UploadPartCommand' | 'CompleteMultipartUploadCommand') {
    const { job } = handOverOnly(LEASE_MS);
    const run = await ledger.enqueue('export', 'http', { schemas: ['crm'] });
    const coordinating = runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'export/crm.tgz', Body: 'the previous tarball' }));
    const client = createS3Client({ endpoint: s3.endpoint });
    const sent: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(context.commandName as string);
        if (context.commandName !== when) return next(args);
        if (when === 'UploadPartCommand') await ledger.cancel(run.id, { kind: 'manual' });
        const result = await next(args);
        if (when === 'CompleteMultipartUploadCommand') await ledger.cancel(run.id, { kind: 'manual' });
        return result;
      },
      { step: 'initialize', name: 'cancelDuringUpload' },
    );
    try {
      while ((await steps.listSteps(run.id)).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      const outcome = await runStepWorker(
        { runId: run.id, step: 'crm' },
        createExportStepWork({ bucket, prefix: 'export/' }, client),
        { leaseMs: LEASE_MS, maxAttempts: 2, requestId: 'req-1' },
        { sql: db.sql, steps },
      );
      await coordinating;
      expect(sent.filter((name) => name === 'UploadPartCommand'), 'the tarball is one part').toHaveLength(1);
      const object = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: 'export/crm.tgz' }));
      const body = Buffer.from(await object.Body!.transformToByteArray());
      return { outcome, run: await getRun(run.id), object: { metadata: object.Metadata, body }, sent };
    } finally {
      client.destroy();
    }
  }

  it('before it appears: the step ends cancelled, the upload is aborted, the tarball already at the key stays', async () => {
    const { outcome, run, object, sent } = await cancelDuringUpload('UploadPartCommand');
    expect(outcome).toMatchObject({ status: 'cancelled' });
    expect(run.status).toBe('cancelled');
    expect(run.steps.map((step) => [step.name, step.status])).toEqual([['crm', 'cancelled']]);
    expect(object.body.toString()).toBe('the previous tarball');
    expect(sent).not.toContain('CompleteMultipartUploadCommand');
    expect(sent).toContain('AbortMultipartUploadCommand');
  });

  it('once it has appeared: the step ends succeeded (its tarball is in place), the run stays cancelled', async () => {
    const { outcome, run, object } = await cancelDuringUpload('CompleteMultipartUploadCommand');
    expect(outcome).toMatchObject({ status: 'succeeded' });
    expect(run.status).toBe('cancelled');
    expect(run.steps.map((step) => [step.name, step.status])).toEqual([['crm', 'succeeded']]);
    expect(object.metadata).toMatchObject({ 'run-id': run.id, schema: 'crm' });
  });
});

describe('closing the run', () => {
  /** Two clients of a connection each, so that the database, not this process, orders what they race to do. */
  function twoConnections(): [Sql, Sql] {
    const url = new URL(adminUrl);
    url.pathname = `/${db.name}`;
    return [postgres(url.toString(), { max: 1 }), postgres(url.toString(), { max: 1 })];
  }

  it('two steps finishing at the same moment close the run exactly once (separate connections, 25 rounds)', async () => {
    const [one, two] = twoConnections();
    try {
      for (let round = 0; round < 25; round += 1) {
        await db.sql`TRUNCATE jobs.runs CASCADE`;
        const run = await ledger.enqueue('export', 'http', { schemas: ['water', 'returns'] });
        await ledger.claim(run.id, { job: 'export', leaseMs: LEASE_MS });
        await steps.addSteps(run.id, ['water', 'returns']);
        const water = await steps.claim(run.id, 'water', { leaseMs: LEASE_MS });
        const returns = await steps.claim(run.id, 'returns', { leaseMs: LEASE_MS });
        const result = { key: 'k', tables: 1, rows: 1, bytes: 1, compressedBytes: 1 };
        // Both connections open and warm before the race starts.
        await Promise.all([one`SELECT 1`, two`SELECT 1`]);
        const endings = await Promise.all([
          createStepLedger(one).finish(water.step!.id, { status: 'succeeded', result }),
          createStepLedger(two).finish(returns.step!.id, { status: 'failed', error: 'boom', final: true }),
        ]);
        expect(endings.filter((e) => e.closed !== undefined), `round ${round}`).toHaveLength(1);
        const [closedRun] = await db.sql`SELECT status, error, finished_at FROM jobs.runs WHERE id = ${run.id}`;
        expect(closedRun).toMatchObject({ status: 'failed', error: '1 of 2 steps did not succeed. returns failed: boom' });
        expect(closedRun!.finished_at).toBeInstanceOf(Date);
      }
    } finally {
      await Promise.all([one.end(), two.end()]);
    }
  }, 60_000);

  it('two steps marking themselves built at the same moment: exactly one learns it is the last (the restore\'s), 25 rounds', async () => {
    const [one, two] = twoConnections();
    try {
      for (let round = 0; round < 25; round += 1) {
        await db.sql`TRUNCATE jobs.runs CASCADE`;
        const run = await ledger.enqueue('restore', 'http');
        await ledger.claim(run.id, { job: 'restore', leaseMs: LEASE_MS });
        await steps.addSteps(run.id, ['water', 'crm'], [{ staging: 's0' }, { staging: 's1' }]);
        const water = await steps.claim(run.id, 'water', { leaseMs: LEASE_MS });
        const crm = await steps.claim(run.id, 'crm', { leaseMs: LEASE_MS });
        await Promise.all([one`SELECT 1`, two`SELECT 1`]);
        const marks = await Promise.all([createStepLedger(one).markStaged(water.step!.id), createStepLedger(two).markStaged(crm.step!.id)]);
        expect(marks.filter((m) => m.last), `round ${round}`).toHaveLength(1);
      }
      // A step whose sibling failed is never the last, and learns which failed.
      await db.sql`TRUNCATE jobs.runs CASCADE`;
      const run = await ledger.enqueue('restore', 'http');
      await ledger.claim(run.id, { job: 'restore', leaseMs: LEASE_MS });
      await steps.addSteps(run.id, ['water', 'crm']);
      const water = await steps.claim(run.id, 'water', { leaseMs: LEASE_MS });
      const crm = await steps.claim(run.id, 'crm', { leaseMs: LEASE_MS });
      await steps.finish(crm.step!.id, { status: 'failed', error: 'boom', final: true });
      expect(await steps.markStaged(water.step!.id)).toEqual({ last: false, failed: ['crm'] });

      // A cancel and the last step's mark queue on the run's row: cancelled first, nothing is put in
      // place (the mark throws); marked first, the cancel is refused, as the swap cannot be called back.
      for (const cancelFirst of [true, false]) {
        await db.sql`TRUNCATE jobs.runs CASCADE`;
        const restore = await ledger.enqueue('restore', 'http');
        await ledger.claim(restore.id, { job: 'restore', leaseMs: LEASE_MS });
        await steps.addSteps(restore.id, ['crm']);
        const only = await steps.claim(restore.id, 'crm', { leaseMs: LEASE_MS });
        if (cancelFirst) {
          await ledger.cancel(restore.id, { kind: 'manual' });
          await expect(steps.markStaged(only.step!.id)).rejects.toThrow(RunCancelledError);
        } else {
          expect(await steps.markStaged(only.step!.id)).toEqual({ last: true, failed: [] });
          await expect(ledger.cancel(restore.id, { kind: 'manual' })).rejects.toThrow(/cannot be cancelled|being put in place/);
          expect((await ledger.get(restore.id))!.status).toBe('running');
        }
      }
    } finally {
      await Promise.all([one.end(), two.end()]);
    }
  }, 60_000);
});
