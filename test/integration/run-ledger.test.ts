import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ActiveRunError, RunNotFoundError, RunStateError } from '../../lib/runs/run-errors';
import { createRunLedger, QUEUED_RUN_EXPIRY_SECONDS } from '../../lib/runs/run-ledger';
import type { JobName, RunLedger, RunStatus } from '../../lib/runs/run-ledger';
import { createMigratedTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';

// One database for the file; every test starts from an empty jobs.runs.
let db: TestDatabase;
let ledger: RunLedger;

beforeAll(async () => {
  db = await createMigratedTestDatabase();
  ledger = createRunLedger(db.sql);
});

afterAll(async () => {
  await db?.drop();
});

beforeEach(async () => {
  await db.sql`TRUNCATE jobs.runs CASCADE`;
});

const UNKNOWN_ID = '3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** The raw row, to compare before and after an operation that must change nothing. */
async function rawRow(id: string) {
  const [row] = await db.sql`SELECT * FROM jobs.runs WHERE id = ${id}`;
  return row;
}

async function countRuns(where: { job?: JobName; status?: RunStatus } = {}): Promise<number> {
  const [{ count }] = await db.sql<[{ count: number }]>`
    SELECT count(*)::int AS count FROM jobs.runs
    WHERE (${where.job ?? null}::text IS NULL OR job = ${where.job ?? null})
      AND (${where.status ?? null}::text IS NULL OR status = ${where.status ?? null})`;
  return count;
}

async function expireLease(id: string, secondsAgo = 60): Promise<void> {
  await db.sql`UPDATE jobs.runs SET lease_expires_at = now() - ${secondsAgo} * interval '1 second' WHERE id = ${id}`;
}

/** A running run of `job`, claimed with a long lease. */
async function runningRun(job: JobName = 'export') {
  const run = await ledger.enqueue(job, 'http');
  const claim = await ledger.claim(run.id, { job, leaseMs: 900_000, requestId: 'req-1' });
  if (!claim.claimed) throw new Error(`setup: could not claim ${run.id}: ${claim.reason}`);
  return claim.run;
}

describe('enqueue', () => {
  it('records a queued run with its trigger and params', async () => {
    const before = Date.now();
    const run = await ledger.enqueue('export', 'http', { schemas: ['crm'] });

    expect(run).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      job: 'export',
      trigger: 'http',
      status: 'queued',
      params: { schemas: ['crm'] },
      attempts: 0,
      requestedAt: expect.stringMatching(ISO),
      startedAt: null,
      finishedAt: null,
      leaseExpiresAt: null,
      progress: null,
      result: null,
      error: null,
      lambdaRequestId: null,
      asOf: null,
      // Over HTTP with nothing said of the caller (the API function says: handle-start-job-request.ts).
      requestedBy: { kind: 'http', apiKeyId: null, sourceIp: null, userAgent: null },
      cancelledBy: null,
    });
    expect(Date.parse(run.requestedAt)).toBeGreaterThanOrEqual(before - 5_000); // clock skew allowance
    expect(await ledger.get(run.id)).toEqual(run);
  });

  it('stores {} when no params are given', async () => {
    const run = await ledger.enqueue('time-limited', 'schedule');
    expect(run.params).toEqual({});
    expect((await rawRow(run.id))?.params).toEqual({});
  });

  it('lets exactly one of 50 concurrent enqueues through; the 49 others name the winner', async () => {
    const sql = postgres(db.url, { max: 10, onnotice: () => {} });
    try {
      const busyLedger = createRunLedger(sql);
      const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => busyLedger.enqueue('export', 'http')));

      const runs = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      const errors = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
      expect(runs).toHaveLength(1);
      expect(errors).toHaveLength(49);
      for (const error of errors) {
        expect(error).toBeInstanceOf(ActiveRunError);
        expect(error).toMatchObject({ job: 'export', activeRunId: runs[0]!.id });
      }
      expect(await countRuns()).toBe(1);
    } finally {
      await sql.end();
    }
  });

  it('keeps one active run per job, not per table: time-limited runs alongside export', async () => {
    const exportRun = await ledger.enqueue('export', 'http');
    const timeLimitedRun = await ledger.enqueue('time-limited', 'schedule');

    expect(timeLimitedRun.status).toBe('queued');
    await expect(ledger.enqueue('time-limited', 'http')).rejects.toMatchObject({ activeRunId: timeLimitedRun.id });
    await expect(ledger.enqueue('export', 'manual')).rejects.toMatchObject({ activeRunId: exportRun.id });
  });

  it('is refused while a run is running under a live lease, and allowed once it has finished', async () => {
    const running = await runningRun();
    const error = await ledger.enqueue('export', 'http').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActiveRunError);
    expect(error).toMatchObject({ activeRunId: running.id, message: expect.stringContaining(running.id) });
    expect((await ledger.get(running.id))?.status).toBe('running');

    await ledger.succeed(running.id, { ok: true });
    const next = await ledger.enqueue('export', 'http');
    expect(next.status).toBe('queued');
    expect(await countRuns({ job: 'export' })).toBe(2);
  });

  it('marks a running run whose lease has expired timed_out, and queues the new run', async () => {
    const stale = await runningRun();
    await expireLease(stale.id, 60);
    const [{ lease }] = await db.sql<[{ lease: Date }]>`SELECT lease_expires_at AS lease FROM jobs.runs WHERE id = ${stale.id}`;

    const next = await ledger.enqueue('export', 'http');

    expect(next.status).toBe('queued');
    expect(next.id).not.toBe(stale.id);
    const timedOut = await ledger.get(stale.id);
    expect(timedOut).toMatchObject({
      status: 'timed_out',
      finishedAt: lease.toISOString(),
      error: expect.stringMatching(/lease expired/i),
      attempts: 1,
    });
  });

  it('marks a run queued for longer than any invocation event lives timed_out, and queues the new run', async () => {
    const lost = await ledger.enqueue('export', 'http');
    await db.sql`UPDATE jobs.runs SET requested_at = now() - ${QUEUED_RUN_EXPIRY_SECONDS + 1} * interval '1 second' WHERE id = ${lost.id}`;

    const next = await ledger.enqueue('export', 'http');

    expect(next).toMatchObject({ status: 'queued' });
    expect(await ledger.get(lost.id)).toMatchObject({ status: 'timed_out', error: expect.stringMatching(/never started/) });
    expect((await ledger.claim(lost.id, { job: 'export', leaseMs: 60_000 })).claimed).toBe(false);
  });

  it('leaves a run queued a little less than that in place: its event may still arrive', async () => {
    const waiting = await ledger.enqueue('export', 'http');
    await db.sql`UPDATE jobs.runs SET requested_at = now() - ${QUEUED_RUN_EXPIRY_SECONDS - 60} * interval '1 second' WHERE id = ${waiting.id}`;

    await expect(ledger.enqueue('export', 'http')).rejects.toThrow(ActiveRunError);
    expect(await ledger.get(waiting.id)).toMatchObject({ status: 'queued' });
  });

  it('does not touch another job\'s expired run', async () => {
    const staleTimeLimited = await runningRun('time-limited');
    await expireLease(staleTimeLimited.id);

    await ledger.enqueue('export', 'http');

    expect((await ledger.get(staleTimeLimited.id))?.status).toBe('running');
  });
});

describe('recordSkipped', () => {
  it('records a finished skipped run naming the active run, without disturbing it', async () => {
    const active = await runningRun('time-limited');

    const skipped = await ledger.recordSkipped('time-limited', 'schedule', { activeRunId: active.id });

    expect(skipped).toMatchObject({
      job: 'time-limited',
      trigger: 'schedule',
      status: 'skipped',
      attempts: 0,
      startedAt: null,
      finishedAt: expect.stringMatching(ISO),
      result: { activeRunId: active.id },
    });
    expect(await ledger.get(active.id)).toEqual(active);
    expect(await countRuns({ job: 'time-limited' })).toBe(2);
  });
});

describe('claim', () => {
  it('moves a queued run to running: attempt 1, a lease of leaseMs from now, the request id', async () => {
    const queued = await ledger.enqueue('export', 'http', { schemas: ['water'] });

    const outcome = await ledger.claim(queued.id, { job: 'export', leaseMs: 90_000, requestId: 'aws-req-123' });

    expect(outcome.claimed).toBe(true);
    if (!outcome.claimed) return;
    expect(outcome.run).toMatchObject({
      id: queued.id,
      status: 'running',
      attempts: 1,
      startedAt: expect.stringMatching(ISO),
      lambdaRequestId: 'aws-req-123',
      params: { schemas: ['water'] },
    });
    expect(Date.parse(outcome.run.leaseExpiresAt!) - Date.parse(outcome.run.startedAt!)).toBe(90_000);
    expect(await ledger.get(queued.id)).toEqual(outcome.run);
  });

  it('stores no request id when none is given', async () => {
    const queued = await ledger.enqueue('export', 'manual');
    const outcome = await ledger.claim(queued.id, { job: 'export', leaseMs: 1_000 });
    expect(outcome).toMatchObject({ claimed: true, run: { lambdaRequestId: null } });
  });

  it('lets only one of several simultaneous deliveries claim a run', async () => {
    const queued = await ledger.enqueue('export', 'http');
    const sql = postgres(db.url, { max: 10, onnotice: () => {} });
    try {
      const busyLedger = createRunLedger(sql);
      const outcomes = await Promise.all(Array.from({ length: 10 }, () => busyLedger.claim(queued.id, { job: 'export', leaseMs: 60_000 })));
      expect(outcomes.filter((o) => o.claimed)).toHaveLength(1);
      expect(outcomes.filter((o) => !o.claimed).map((o) => !o.claimed && o.reason)).toEqual(Array(9).fill('running_under_live_lease'));
      expect((await ledger.get(queued.id))?.attempts).toBe(1);
    } finally {
      await sql.end();
    }
  });

  it('does nothing to a run that already succeeded', async () => {
    const run = await runningRun();
    await ledger.succeed(run.id, { uploaded: 6 });
    const before = await rawRow(run.id);

    const outcome = await ledger.claim(run.id, { job: 'export', leaseMs: 60_000, requestId: 'redelivery' });

    expect(outcome).toMatchObject({ claimed: false, reason: 'already_succeeded', run: { id: run.id, status: 'succeeded' } });
    expect(await rawRow(run.id)).toEqual(before);
  });

  it('does nothing to a run still running under a live lease', async () => {
    const run = await runningRun();
    const before = await rawRow(run.id);

    const outcome = await ledger.claim(run.id, { job: 'export', leaseMs: 60_000, requestId: 'redelivery' });

    expect(outcome).toMatchObject({ claimed: false, reason: 'running_under_live_lease', run: { id: run.id } });
    expect(await rawRow(run.id)).toEqual(before);
  });

  it("takes over a running run under a live lease when Lambda retries the same request (the attempt crashed)", async () => {
    const run = await runningRun(); // claimed by request 'req-1'

    const outcome = await ledger.claim(run.id, { job: 'export', leaseMs: 60_000, requestId: 'req-1' });

    expect(outcome).toMatchObject({ claimed: true, run: { id: run.id, status: 'running', attempts: 2, lambdaRequestId: 'req-1' } });
  });

  it('takes over a running run whose lease has expired, as attempt 2', async () => {
    const run = await runningRun();
    await ledger.reportProgress(run.id, { tablesDone: 3 });
    await expireLease(run.id);

    const outcome = await ledger.claim(run.id, { job: 'export', leaseMs: 60_000, requestId: 'req-2' });

    expect(outcome).toMatchObject({ claimed: true, run: { status: 'running', attempts: 2, lambdaRequestId: 'req-2', progress: null } });
    if (outcome.claimed) expect(Date.parse(outcome.run.leaseExpiresAt!)).toBeGreaterThan(Date.now());
  });

  it('retries a failed run: running again, attempt 2, the old error cleared', async () => {
    const run = await runningRun();
    await ledger.fail(run.id, 'connection reset');

    const outcome = await ledger.claim(run.id, { job: 'export', leaseMs: 60_000, requestId: 'retry' });

    expect(outcome).toMatchObject({
      claimed: true,
      run: { status: 'running', attempts: 2, error: null, finishedAt: null, lambdaRequestId: 'retry' },
    });
  });

  it('retries a timed-out run', async () => {
    const run = await runningRun();
    await ledger.fail(run.id, 'Task timed out', 'timed_out');

    expect(await ledger.claim(run.id, { job: 'export', leaseMs: 60_000 })).toMatchObject({ claimed: true, run: { status: 'running', attempts: 2 } });
  });

  it('will not retry an old run while a newer run of the job is active', async () => {
    const old = await runningRun();
    await expireLease(old.id);
    const newer = await ledger.enqueue('export', 'http'); // times the old one out
    const before = await rawRow(old.id);
    expect(before?.status).toBe('timed_out');

    const outcome = await ledger.claim(old.id, { job: 'export', leaseMs: 60_000 });

    expect(outcome).toMatchObject({ claimed: false, reason: 'not_claimable', run: { id: old.id, status: 'timed_out' } });
    expect(await rawRow(old.id)).toEqual(before);
    expect((await ledger.get(newer.id))?.status).toBe('queued');
  });

  it('never claims a skipped run', async () => {
    const active = await ledger.enqueue('export', 'http');
    const skipped = await ledger.recordSkipped('export', 'schedule', { activeRunId: active.id });
    await ledger.succeed((await ledger.claim(active.id, { job: 'export', leaseMs: 1_000 })).run!.id, null);

    expect(await ledger.claim(skipped.id, { job: 'export', leaseMs: 60_000 })).toMatchObject({ claimed: false, reason: 'not_claimable' });
    expect((await ledger.get(skipped.id))?.status).toBe('skipped');
  });

  it('answers not_found for an unknown id or one that is not a uuid', async () => {
    expect(await ledger.claim(UNKNOWN_ID, { job: 'export', leaseMs: 60_000 })).toEqual({ claimed: false, reason: 'not_found' });
    expect(await ledger.claim('not-a-uuid', { job: 'export', leaseMs: 60_000 })).toEqual({ claimed: false, reason: 'not_found' });
  });

  it('refuses a lease that is not a positive whole number of milliseconds', async () => {
    const queued = await ledger.enqueue('export', 'http');
    await expect(ledger.claim(queued.id, { job: 'export', leaseMs: 0 })).rejects.toThrow(RangeError);
    await expect(ledger.claim(queued.id, { job: 'export', leaseMs: 1.5 })).rejects.toThrow(RangeError);
    expect((await ledger.get(queued.id))?.status).toBe('queued');
  });
});

describe('reportProgress', () => {
  it('records progress while the run is running, replacing the previous value', async () => {
    const run = await runningRun();
    await ledger.reportProgress(run.id, { schemasDone: 1, rows: 10 });
    await ledger.reportProgress(run.id, { schemasDone: 2, rows: 25 });
    expect((await ledger.get(run.id))?.progress).toEqual({ schemasDone: 2, rows: 25 });
  });

  it('ignores progress for a run that is not running', async () => {
    const queued = await ledger.enqueue('export', 'http');
    await ledger.reportProgress(queued.id, { early: true });
    expect((await ledger.get(queued.id))?.progress).toBeNull();

    await ledger.claim(queued.id, { job: 'export', leaseMs: 60_000 });
    await ledger.reportProgress(queued.id, { last: true });
    await ledger.succeed(queued.id, { done: true });
    await ledger.reportProgress(queued.id, { late: true });
    expect((await ledger.get(queued.id))?.progress).toEqual({ last: true });

    await expect(ledger.reportProgress(UNKNOWN_ID, {})).resolves.toBeUndefined();
  });
});

describe('succeed', () => {
  it('ends a running run with its result', async () => {
    const run = await runningRun();
    const done = await ledger.succeed(run.id, { count: 3, timeTakenMs: 120 });
    expect(done).toMatchObject({ status: 'succeeded', result: { count: 3, timeTakenMs: 120 }, error: null, finishedAt: expect.stringMatching(ISO) });
    expect(Date.parse(done.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(done.startedAt!));
    expect(await ledger.get(run.id)).toEqual(done);
  });

  it('refuses a run that is not running, or unknown', async () => {
    const queued = await ledger.enqueue('export', 'http');
    await expect(ledger.succeed(queued.id, {})).rejects.toThrow(RunStateError);
    await expect(ledger.succeed(queued.id, {})).rejects.toMatchObject({ status: 'queued', runId: queued.id });
    await expect(ledger.succeed(UNKNOWN_ID, {})).rejects.toThrow(RunNotFoundError);
    await expect(ledger.succeed('nope', {})).rejects.toThrow(RunNotFoundError);
    expect((await ledger.get(queued.id))?.status).toBe('queued');
  });
});

describe('fail', () => {
  it('ends a running run as failed with the error, freeing the job', async () => {
    const run = await runningRun();
    const failed = await ledger.fail(run.id, 'schema water: relation does not exist');
    expect(failed).toMatchObject({ status: 'failed', error: 'schema water: relation does not exist', finishedAt: expect.stringMatching(ISO) });
    await expect(ledger.enqueue('export', 'http')).resolves.toMatchObject({ status: 'queued' });
  });

  it('fails a queued run (the hand-over to the worker failed)', async () => {
    const queued = await ledger.enqueue('time-limited', 'http');
    expect(await ledger.fail(queued.id, 'Could not hand the run to the worker: throttled')).toMatchObject({
      status: 'failed',
      attempts: 0,
      startedAt: null,
    });
  });

  it('can record a timeout', async () => {
    const run = await runningRun();
    expect(await ledger.fail(run.id, 'Task timed out after 900 seconds', 'timed_out')).toMatchObject({ status: 'timed_out' });
  });

  it('refuses a finished run, or an unknown one', async () => {
    const run = await runningRun();
    await ledger.succeed(run.id, {});
    await expect(ledger.fail(run.id, 'late')).rejects.toMatchObject({ name: 'RunStateError', status: 'succeeded' });
    expect((await ledger.get(run.id))?.status).toBe('succeeded');
    await expect(ledger.fail(UNKNOWN_ID, 'x')).rejects.toThrow(RunNotFoundError);
  });
});

describe('get', () => {
  it('answers undefined for an unknown id or one that is not a uuid', async () => {
    await ledger.enqueue('export', 'http');
    expect(await ledger.get(UNKNOWN_ID)).toBeUndefined();
    expect(await ledger.get('42')).toBeUndefined();
  });
});

describe('list', () => {
  /** Finished runs of a job, one a minute apart going back from now; returns their ids, newest first. */
  async function seedFinishedRuns(job: JobName, statuses: RunStatus[]): Promise<string[]> {
    const rows = await db.sql<{ id: string }[]>`
      INSERT INTO jobs.runs (job, trigger, status, requested_at, finished_at)
      SELECT ${job}, 'schedule', s.status, now() - s.n * interval '1 minute', now() - s.n * interval '1 minute'
      FROM unnest(${statuses}::text[]) WITH ORDINALITY AS s(status, n)
      ORDER BY s.n
      RETURNING id`;
    return rows.map((r) => r.id);
  }

  it('lists a job\'s runs newest first, 20 by default, and only that job\'s', async () => {
    const ids = await seedFinishedRuns('export', Array<RunStatus>(25).fill('succeeded'));
    await seedFinishedRuns('time-limited', ['failed']);

    const runs = await ledger.list('export');

    expect(runs.map((r) => r.id)).toEqual(ids.slice(0, 20));
    expect(runs.every((r) => r.job === 'export')).toBe(true);
  });

  it('filters by status', async () => {
    const ids = await seedFinishedRuns('time-limited', ['succeeded', 'failed', 'succeeded', 'skipped', 'failed']);
    const failed = await ledger.list('time-limited', { status: 'failed' });
    expect(failed.map((r) => r.id)).toEqual([ids[1], ids[4]]);
    expect(await ledger.list('time-limited', { status: 'running' })).toEqual([]);
  });

  it('takes a limit from 1 to 100', async () => {
    const ids = await seedFinishedRuns('export', Array<RunStatus>(120).fill('failed'));
    expect((await ledger.list('export', { limit: 1 })).map((r) => r.id)).toEqual([ids[0]]);
    expect((await ledger.list('export', { limit: 100 })).map((r) => r.id)).toEqual(ids.slice(0, 100));
    for (const limit of [0, 101, 2.5, -1, Number.NaN]) {
      await expect(ledger.list('export', { limit })).rejects.toThrow(RangeError);
    }
  });

  it('includes the active run with the finished ones', async () => {
    await seedFinishedRuns('export', ['succeeded']);
    const active = await ledger.enqueue('export', 'http');
    const runs = await ledger.list('export');
    expect(runs.map((r) => r.status)).toEqual(['queued', 'succeeded']);
    expect(runs[0]).toEqual(active);
  });
});
