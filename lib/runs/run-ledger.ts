import type { JSONValue, Sql } from 'postgres';
import { JOB_NAMES, RUN_STATUSES } from './run';
import type { JobName, RequestedBy, Run, RunStatus, Trigger } from './run';
import { QUEUED_RUN_EXPIRY_SECONDS, takeoverAllowed } from './lease-rules';
import { createStepLedger, totalSteps } from './step-ledger';
import type { RunStep } from './step-ledger';
import { DEFAULT_LIST_LIMIT, isJobName, isListLimit, isRunStatus, isUuid, MAX_LIST_LIMIT } from './run';
import { inTransaction } from '../clients/transaction';
import { ActiveRunError, LedgerNotMigratedError, RunNotFoundError, RunStateError } from './run-errors';

export { JOB_NAMES, RUN_STATUSES };
export type { JobName, RequestedBy, Run, RunStatus, Trigger };

/** A job's schedule paused (or resumed) without a deploy, by whom and when. */
export interface SchedulePause {
  paused: boolean;
  by: RequestedBy;
  at: string;
}

export type ClaimOutcome =
  | { claimed: true; run: Run }
  | { claimed: false; reason: 'not_found' | 'already_succeeded' | 'running_under_live_lease' | 'not_claimable'; run?: Run };

export interface RunLedger {
  /**
   * Marks this job's running runs whose lease has expired as timed_out, then inserts a queued
   * run. Throws ActiveRunError (naming the active run) when one is queued or running; the unique
   * index decides that, not a prior read. `requestId`: the Lambda request of the worker that
   * records the run (a scheduled or manual trigger), so that Lambda's retry of it finds the run.
   */
  enqueue(job: JobName, trigger: Trigger, params?: Record<string, unknown>, requestId?: string, requestedBy?: RequestedBy): Promise<Run>;
  /** The newest run of `job` recorded or last attempted by the Lambda request `requestId`. */
  findByRequestId(job: JobName, requestId: string): Promise<Run | undefined>;
  /**
   * Records a run that did not happen: because `activeRunId` was active (its result names that
   * run), or because the job's schedule is paused (its result names the pause).
   */
  recordSkipped(job: JobName, trigger: Trigger, why: { activeRunId: string } | { pause: SchedulePause }, requestedBy?: RequestedBy): Promise<Run>;
  /**
   * Starts an attempt: queued, failed, timed_out, running with an expired lease, or running under
   * the same Lambda request id (a retry of an attempt that crashed) → running, attempts + 1, a
   * lease of leaseMs from now. One conditional UPDATE, so two deliveries of the
   * same event cannot both claim it.
   */
  claim(runId: string, opts: { job: JobName; leaseMs: number; requestId?: string }): Promise<ClaimOutcome>;
  /** Records progress while the run is running; ignored otherwise (progress is best effort). */
  reportProgress(runId: string, progress: unknown): Promise<void>;
  /** running → succeeded. Throws RunNotFoundError / RunStateError otherwise. */
  succeed(runId: string, result: unknown): Promise<Run>;
  /** queued or running → failed (or timed_out). Throws RunNotFoundError / RunStateError otherwise. */
  fail(runId: string, error: string, status?: 'failed' | 'timed_out'): Promise<Run>;
  get(runId: string): Promise<Run | undefined>;
  /** The run with its steps in their configured order; a run with steps shows their totals as its progress. */
  getWithSteps(runId: string): Promise<RunWithSteps | undefined>;
  /** Newest first; limit 20 by default, 1 to 100 (RangeError outside that). */
  list(job: JobName, opts?: { status?: RunStatus; limit?: number }): Promise<Run[]>;
  /**
   * queued or running → cancelled, with who asked; its queued steps are cancelled with it, and its
   * running steps notice within seconds (runs/cancel-watch.ts) and end cancelled. Throws
   * RunNotFoundError, or RunStateError for a run that has ended.
   */
  cancel(runId: string, by: RequestedBy): Promise<RunWithSteps>;
  /** Whether the job's schedule is paused, and who last paused or resumed it; undefined if never. */
  schedulePause(job: JobName): Promise<SchedulePause | undefined>;
  setSchedulePause(job: JobName, paused: boolean, by: RequestedBy): Promise<SchedulePause>;
}

/** A step as GET /jobs/runs/{id} shows it (a dashboard reads exactly this). */
export interface ShownStep {
  name: string;
  status: RunStep['status'];
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  result: RunStep['result'];
  error: string | null;
  /** Only while the step runs: its worker's latest report (tables done, rows, bytes), for the dashboard's bar. */
  progress?: NonNullable<RunStep['progress']>;
  verification?: unknown;
}

export type RunWithSteps = Run & { steps: ShownStep[] };

function showStep(step: RunStep): ShownStep {
  const { name, status, attempts, startedAt, finishedAt, result, error, progress, verification } = step;
  return {
    name, status, attempts, startedAt, finishedAt, result, error,
    // A finished step's figures are its result; the progress of an earlier attempt would mislead.
    ...(status === 'running' && progress !== null ? { progress } : {}),
    ...(verification === null ? {} : { verification }),
  };
}

interface RunRow {
  id: string;
  job: JobName;
  trigger: Trigger;
  status: RunStatus;
  params: Record<string, unknown>;
  attempts: number;
  requested_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  lease_expires_at: Date | null;
  progress: unknown;
  result: unknown;
  error: string | null;
  lambda_request_id: string | null;
  as_of: Date | null;
  requested_by: RequestedBy | null;
  cancelled_by: RequestedBy | null;
}

const ACTIVE_RUN_INDEX = 'runs_one_active_per_job';
const UNIQUE_VIOLATION = '23505';

function iso(value: Date | null): string | null {
  return value === null ? null : value.toISOString();
}

function toRun(row: RunRow): Run {
  return {
    id: row.id,
    job: row.job,
    trigger: row.trigger,
    status: row.status,
    params: row.params,
    attempts: row.attempts,
    requestedAt: row.requested_at.toISOString(),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    leaseExpiresAt: iso(row.lease_expires_at),
    progress: row.progress,
    result: row.result,
    error: row.error,
    lambdaRequestId: row.lambda_request_id,
    asOf: iso(row.as_of),
    requestedBy: row.requested_by,
    cancelledBy: row.cancelled_by,
  };
}

/** Who asked, when the caller does not say: what the trigger alone tells. */
function requesterOf(trigger: Trigger): RequestedBy {
  return trigger === 'http' ? { kind: 'http', apiKeyId: null, sourceIp: null, userAgent: null } : { kind: trigger };
}

function isActiveRunConflict(error: unknown): boolean {
  const e = error as { code?: unknown; constraint_name?: unknown } | null;
  return e?.code === UNIQUE_VIOLATION && e.constraint_name === ACTIVE_RUN_INDEX;
}

/**
 * How often a lost race is retried: the state we collided with changed before we could read it
 * (e.g. the active run finished between our insert and our read). Each retry needs another
 * change in between, so a few are plenty.
 */
const RACE_RETRIES = 3;

// Shared with the steps of a run: lease-rules.ts.
export { QUEUED_RUN_EXPIRY_SECONDS };

const UNDEFINED_TABLE = '42P01';

function explainMissingTable<Args extends unknown[], Result>(method: (...args: Args) => Promise<Result>) {
  return async (...args: Args): Promise<Result> => {
    try {
      return await method(...args);
    } catch (error) {
      if ((error as { code?: unknown }).code === UNDEFINED_TABLE && /jobs\.run(s|_steps)/.test((error as Error).message)) {
        throw new LedgerNotMigratedError();
      }
      throw error;
    }
  };
}

export function createRunLedger(sql: Sql): RunLedger {
  const ledger = createUncheckedRunLedger(sql);
  return {
    enqueue: explainMissingTable(ledger.enqueue),
    findByRequestId: explainMissingTable(ledger.findByRequestId),
    recordSkipped: explainMissingTable(ledger.recordSkipped),
    claim: explainMissingTable(ledger.claim),
    reportProgress: explainMissingTable(ledger.reportProgress),
    succeed: explainMissingTable(ledger.succeed),
    fail: explainMissingTable(ledger.fail),
    get: explainMissingTable(ledger.get),
    getWithSteps: explainMissingTable(ledger.getWithSteps),
    list: explainMissingTable(ledger.list),
    cancel: explainMissingTable(ledger.cancel),
    schedulePause: explainMissingTable(ledger.schedulePause),
    setSchedulePause: explainMissingTable(ledger.setSchedulePause),
  };
}

function createUncheckedRunLedger(sql: Sql): RunLedger {
  // JSON in and out: results and progress come from the jobs as plain JSON-able values, and an
  // absent value is stored as SQL NULL rather than JSON null.
  const jsonb = (value: unknown) => (value === undefined || value === null ? null : sql.json(value as JSONValue));

  const steps = createStepLedger(sql);

  async function findRow(runId: string): Promise<(RunRow & { lease_live: boolean | null }) | undefined> {
    if (!isUuid(runId)) return undefined; // the uuid column would reject it; no such run can exist
    const [row] = await sql<(RunRow & { lease_live: boolean | null })[]>`
      SELECT *, lease_expires_at > now() AS lease_live FROM jobs.runs WHERE id = ${runId}`;
    return row;
  }

  async function withSteps(runId: string): Promise<RunWithSteps | undefined> {
    const row = await findRow(runId);
    if (!row) return undefined;
    const run = toRun(row);
    const runSteps = await steps.listSteps(runId);
    if (runSteps.length === 0) return { ...run, steps: [] };
    return { ...run, progress: totalSteps(runSteps), steps: runSteps.map(showStep) };
  }

  async function findActiveRunId(job: JobName): Promise<string | undefined> {
    const [row] = await sql<{ id: string }[]>`
      SELECT id FROM jobs.runs WHERE job = ${job} AND status IN ('queued', 'running')`;
    return row?.id;
  }

  /** Diagnoses an UPDATE that matched no row, for succeed and fail. */
  async function transitionError(runId: string, action: string): Promise<Error> {
    const row = await findRow(runId);
    return row ? new RunStateError(runId, row.status, action) : new RunNotFoundError(runId);
  }

  return {
    async enqueue(job, trigger, params = {}, requestId, requestedBy = requesterOf(trigger)) {
      // A fanned-out run follows its steps: steps nobody carries on end it first.
      await steps.expireSteps(job);
      // A run still 'running' past its lease lost its worker to the Lambda timeout. The lease
      // was that timeout, so the run ended when the lease did.
      await sql`
        UPDATE jobs.runs
        SET status = 'timed_out',
            finished_at = lease_expires_at,
            error = 'The lease expired before the run finished: its worker stopped, probably at the Lambda timeout'
        WHERE job = ${job} AND status = 'running' AND lease_expires_at <= now()`;
      await sql`
        UPDATE jobs.runs
        SET status = 'timed_out',
            finished_at = now(),
            error = ${`The run was never started: its worker was not invoked within ${QUEUED_RUN_EXPIRY_SECONDS / 60} minutes (see the dead-letter queue)`}
        WHERE job = ${job} AND status = 'queued'
          AND requested_at <= now() - ${QUEUED_RUN_EXPIRY_SECONDS} * interval '1 second'`;

      for (let attempt = 0; ; attempt += 1) {
        try {
          const [row] = await sql<RunRow[]>`
            INSERT INTO jobs.runs (job, trigger, status, params, lambda_request_id, requested_by)
            VALUES (${job}, ${trigger}, 'queued', ${sql.json(params as JSONValue)}, ${requestId ?? null}, ${sql.json(requestedBy as unknown as JSONValue)})
            RETURNING *`;
          return toRun(row!);
        } catch (error) {
          if (!isActiveRunConflict(error)) throw error;
          const activeRunId = await findActiveRunId(job);
          if (activeRunId !== undefined) throw new ActiveRunError(job, activeRunId);
          // The winner finished between our insert and our read: the way is clear, so try again.
          if (attempt >= RACE_RETRIES) throw error;
        }
      }
    },

    async findByRequestId(job, requestId) {
      const [row] = await sql<RunRow[]>`
        SELECT * FROM jobs.runs
        WHERE job = ${job} AND lambda_request_id = ${requestId}
        ORDER BY requested_at DESC
        LIMIT 1`;
      return row && toRun(row);
    },

    async recordSkipped(job, trigger, why, requestedBy = requesterOf(trigger)) {
      const result = 'pause' in why ? { reason: 'paused', pause: why.pause } : why;
      const [row] = await sql<RunRow[]>`
        INSERT INTO jobs.runs (job, trigger, status, finished_at, result, requested_by)
        VALUES (${job}, ${trigger}, 'skipped', now(), ${sql.json(result as unknown as JSONValue)}, ${sql.json(requestedBy as unknown as JSONValue)})
        RETURNING *`;
      return toRun(row!);
    },

    async claim(runId, { job, leaseMs, requestId }) {
      if (!Number.isInteger(leaseMs) || leaseMs <= 0) throw new RangeError(`leaseMs must be a positive whole number, not ${leaseMs}`);
      if (!isUuid(runId)) return { claimed: false, reason: 'not_found' };

      for (let attempt = 0; ; attempt += 1) {
        let claimedRow: RunRow | undefined;
        try {
          // A new attempt starts clean: the previous attempt's progress, result and error go.
          [claimedRow] = await sql<RunRow[]>`
            UPDATE jobs.runs
            SET status = 'running',
                attempts = attempts + 1,
                started_at = now(),
                finished_at = NULL,
                lease_expires_at = now() + ${leaseMs} * interval '1 millisecond',
                lambda_request_id = ${requestId ?? null},
                progress = NULL,
                result = NULL,
                error = NULL
            WHERE id = ${runId}
              AND job = ${job}
              AND (status IN ('queued', 'failed', 'timed_out') OR ${takeoverAllowed(sql, requestId)})
            RETURNING *`;
        } catch (error) {
          // Retrying a failed or timed-out run while a newer run of the job is active: the
          // newer run has the job now.
          if (!isActiveRunConflict(error)) throw error;
          const row = await findRow(runId);
          return { claimed: false, reason: 'not_claimable', ...(row && { run: toRun(row) }) };
        }
        if (claimedRow) return { claimed: true, run: toRun(claimedRow) };

        const row = await findRow(runId);
        // Another job's run is not this worker's to run: to it, no such run exists.
        if (!row || row.job !== job) return { claimed: false, reason: 'not_found' };
        const run = toRun(row);
        if (row.status === 'succeeded') return { claimed: false, reason: 'already_succeeded', run };
        if (row.status === 'running' && row.lease_live) return { claimed: false, reason: 'running_under_live_lease', run };
        // Anything else that looks claimable now changed under us (e.g. the lease expired
        // between the UPDATE and the read): try again, a few times at most.
        if (row.status === 'skipped' || attempt >= RACE_RETRIES) return { claimed: false, reason: 'not_claimable', run };
      }
    },

    async reportProgress(runId, progress) {
      if (!isUuid(runId)) return;
      await sql`UPDATE jobs.runs SET progress = ${jsonb(progress)} WHERE id = ${runId} AND status = 'running'`;
    },

    async succeed(runId, result) {
      const [row] = isUuid(runId)
        ? await sql<RunRow[]>`
            UPDATE jobs.runs
            SET status = 'succeeded', finished_at = now(), result = ${jsonb(result)}, error = NULL
            WHERE id = ${runId} AND status = 'running'
            RETURNING *`
        : [];
      if (!row) throw await transitionError(runId, 'succeed');
      return toRun(row);
    },

    async fail(runId, error, status = 'failed') {
      if (status !== 'failed' && status !== 'timed_out') throw new RangeError(`A run can only fail as failed or timed_out, not ${status}`);
      // queued too: the API marks a run failed when it could not hand it to the worker.
      const [row] = isUuid(runId)
        ? await sql<RunRow[]>`
            UPDATE jobs.runs
            SET status = ${status}, finished_at = now(), error = ${error}
            WHERE id = ${runId} AND status IN ('queued', 'running')
            RETURNING *`
        : [];
      if (!row) throw await transitionError(runId, 'fail');
      return toRun(row);
    },

    async get(runId) {
      const row = await findRow(runId);
      return row && toRun(row);
    },

    getWithSteps: withSteps,

    async cancel(runId, by) {
      await inTransaction(sql, async (tx) => {
        const [row] = isUuid(runId) ? await tx<{ status: RunStatus }[]>`SELECT status FROM jobs.runs WHERE id = ${runId} FOR UPDATE` : [];
        if (!row) throw new RunNotFoundError(runId);
        if (row.status !== 'queued' && row.status !== 'running') throw new RunStateError(runId, row.status, 'cancel');
        // Every step built (the restore): its last step is putting the run in place, at one moment
        // that cannot be called back.
        const [building] = await tx<{ staged: boolean }[]>`
          SELECT count(*) > 0 AND bool_and(staged_at IS NOT NULL) AS staged FROM jobs.run_steps WHERE run_id = ${runId}`;
        if (building?.staged) throw new RunStateError(runId, 'running', 'cancel', 'its schemas are being put in place, which cannot be called back');
        const error = `Cancelled by ${describeRequester(by)}`;
        await tx`
          UPDATE jobs.runs
          SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL, error = ${error}, cancelled_by = ${sql.json(by as unknown as JSONValue)}
          WHERE id = ${runId}`;
        // Steps not started never start; running ones notice (cancel-watch.ts) and end cancelled.
        await tx`
          UPDATE jobs.run_steps SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL, error = 'Cancelled before it started'
          WHERE run_id = ${runId} AND status = 'queued'`;
      });
      return (await withSteps(runId))!;
    },

    async schedulePause(job) {
      const [row] = await sql<{ paused: boolean; changed_by: RequestedBy; changed_at: Date }[]>`
        SELECT paused, changed_by, changed_at FROM jobs.schedule_pauses WHERE job = ${job}`;
      return row && { paused: row.paused, by: row.changed_by, at: row.changed_at.toISOString() };
    },

    async setSchedulePause(job, paused, by) {
      const [row] = await sql<{ changed_at: Date }[]>`
        INSERT INTO jobs.schedule_pauses (job, paused, changed_by) VALUES (${job}, ${paused}, ${sql.json(by as unknown as JSONValue)})
        ON CONFLICT (job) DO UPDATE SET paused = excluded.paused, changed_by = excluded.changed_by, changed_at = now()
        RETURNING changed_at`;
      return { paused, by, at: row!.changed_at.toISOString() };
    },

    async list(job, { status, limit = DEFAULT_LIST_LIMIT } = {}) {
      // A programming error, not a caller's: the HTTP handler checks its query before asking.
      if (!isListLimit(limit)) throw new RangeError(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT}, not ${limit}`);
      if (!isJobName(job)) throw new RangeError(`Unknown job ${JSON.stringify(job)}`);
      if (status !== undefined && !isRunStatus(status)) throw new RangeError(`Unknown run status ${JSON.stringify(status)}`);
      const rows = await sql<RunRow[]>`
        SELECT * FROM jobs.runs
        WHERE job = ${job} ${status === undefined ? sql`` : sql`AND status = ${status}`}
        ORDER BY requested_at DESC, id DESC
        LIMIT ${limit}`;
      return rows.map(toRun);
    },
  };
}

/** A requester in a few words, for a message: "API key abc123 (203.0.113.9)", "the schedule". */
export function describeRequester(by: RequestedBy): string {
  switch (by.kind) {
    case 'http':
      return `${by.apiKeyId ? `API key ${by.apiKeyId}` : 'an API caller'}${by.sourceIp ? ` (${by.sourceIp})` : ''}`;
    case 'schedule':
      return 'the schedule';
    case 'manual':
      return 'a manual invocation';
    case 'export':
      return `export run ${by.exportRunId}`;
  }
}
