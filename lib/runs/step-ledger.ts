import type { JSONValue, PendingQuery, Row, Sql } from 'postgres';
import { inTransaction } from '../clients/transaction';
import { RunCancelledError } from './cancel-watch';
import { QUEUED_RUN_EXPIRY_SECONDS, takeoverAllowed } from './lease-rules';
import { isUuid } from './run';
import type { JobName, RunStatus } from './run';

/**
 * The steps of a fanned-out run (the export: one per schema), each carried out by its own Lambda
 * invocation. A step is claimed, leased, taken over and expired by the run's rules
 * (lease-rules.ts); the run follows its steps: it stays running while any step is queued or
 * running, and the step that finishes last closes it, decided under a lock on the run's row.
 */

export const STEP_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

/** What a step that succeeded produced (the export: one schema's tarball). */
export interface StepResult {
  tables: number;
  rows: number;
  bytes: number;
  compressedBytes: number;
  key: string;
  timeTakenMs?: number;
  /** The moment the step's output shows (the export: the run's snapshot). */
  asOf?: string;
  /** The restore: the export run the tarball came from, and whether the run's schemas were put in place by this step. */
  exportRunId?: string;
  replaced?: boolean;
  /** The export: why its tarball carries no definition, when it does not (a restore refuses it). */
  definitionUnavailable?: string;
}

/** Progress of a running step, as its worker reports it. */
export interface StepProgress {
  tablesDone: number;
  rows: number;
  bytes: number;
}

/** One row of jobs.run_steps. Times are ISO 8601 strings. */
export interface RunStep {
  id: string;
  runId: string;
  position: number;
  name: string;
  status: StepStatus;
  attempts: number;
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  leaseExpiresAt: string | null;
  lambdaRequestId: string | null;
  progress: StepProgress | null;
  result: StepResult | null;
  error: string | null;
  verification: unknown;
  /** When this attempt had imported the run's snapshot (the export), or null. */
  snapshotImportedAt: string | null;
  /** What the step works on, fixed when the run fanned out (the restore's tarball), or null. */
  input: Record<string, unknown> | null;
  /** When this attempt had built its schema out of sight (the restore), or null. */
  stagedAt: string | null;
}

/** The snapshot a run's steps read in (see lib/export/run-snapshot.ts), as the ledger keeps it. */
export interface RecordedRunSnapshot {
  id: string;
  asOf: string;
}

/** A run's progress, totalled over its steps. */
export interface StepTotals {
  schemasDone: number;
  schemasTotal: number;
  tables: number;
  rows: number;
  bytes: number;
  compressedBytes: number;
}

/** A run as its last step closed it. */
export interface ClosedRun {
  id: string;
  job: JobName;
  status: Extract<RunStatus, 'succeeded' | 'failed' | 'timed_out'>;
  error: string | null;
  /** From the run's start (or its request, if it never started) to its closing. */
  durationMs: number;
  rows: number;
  bytes: number;
}

export type StepClaimOutcome =
  | { claimed: true; step: RunStep }
  | { claimed: false; reason: 'not_found' | 'already_succeeded' | 'running_under_live_lease' | 'not_claimable'; step?: RunStep };

/** How a step attempt ended. `final: false`: Lambda will retry it, so it waits queued again. */
export type StepEnding =
  | { status: 'succeeded'; result: StepResult }
  | { status: 'failed'; error: string; final: boolean }
  /** Its run was cancelled: the attempt stopped, undoing what it had begun. */
  | { status: 'cancelled' };

export interface StepLedger {
  /**
   * Records one queued step per name, in the order given, on a running run (again: a no-op for
   * names it has already; none on a run that is no longer running, e.g. cancelled meanwhile), and
   * extends the run's lease to cover them (RUN_LEASE_WHILE_STEPS_MS).
   * Resolves with every step of the run.
   */
  addSteps(runId: string, names: readonly string[], inputs?: readonly Record<string, unknown>[]): Promise<RunStep[]>;
  /** The run's steps in their configured order. */
  listSteps(runId: string): Promise<RunStep[]>;
  /**
   * Starts an attempt of a step of a running run: queued, running with an expired lease, or
   * running under the same Lambda request id → running, attempts + 1, lease of leaseMs. A failed,
   * timed-out or succeeded step is final: its run has counted it.
   */
  claim(runId: string, name: string, opts: { leaseMs: number; requestId?: string }): Promise<StepClaimOutcome>;
  /** Best effort, while the step is running. */
  reportProgress(stepId: string, progress: StepProgress): Promise<void>;
  /**
   * Records how the attempt ended and, if that was the run's last active step, closes the run.
   * Ignored (resolves with step undefined) for a step no longer running (or, for a final
   * failure, no longer queued or running).
   */
  finish(stepId: string, ending: StepEnding): Promise<{ step: RunStep | undefined; closed: ClosedRun | undefined }>;
  /**
   * Closes the run if none of its steps is queued or running (giving up lapsed ones first), e.g.
   * when a late redelivery of the coordinator's event finds every step already ended.
   */
  closeIfDone(runId: string): Promise<ClosedRun | undefined>;
  /**
   * Gives up this job's steps nobody carries on (running past the lease, or queued past
   * QUEUED_RUN_EXPIRY_SECONDS) as timed_out, and closes their runs (and any running run whose
   * steps have all ended but whose closing was lost). Called before a new run is recorded.
   */
  expireSteps(job: JobName): Promise<void>;
  /** Records the run's snapshot, before any step is handed over; a run has one, never replaced. */
  recordRunSnapshot(runId: string, snapshot: RecordedRunSnapshot): Promise<void>;
  /** The run's snapshot, if its coordinator recorded one. */
  runSnapshot(runId: string): Promise<RecordedRunSnapshot | undefined>;
  /** Records that the step's running attempt has imported the run's snapshot on every connection. */
  markSnapshotImported(stepId: string): Promise<void>;
  /** The steps the run's snapshot is still held for: queued, or running without having imported it. */
  stepsAwaitingSnapshot(runId: string): Promise<string[]>;
  /**
   * Records that the step's running attempt has built its part out of sight (the restore: its
   * schema, in staging), under a lock on the run's row, and says what its siblings have done: `last`
   * when every other step has built its part too (exactly one step of a run learns that: the one
   * that puts them all in place), `failed` naming the steps that failed or timed out. Throws
   * RunCancelledError if the run was cancelled: it will not be put in place.
   */
  markStaged(stepId: string): Promise<{ last: boolean; failed: string[] }>;
  /** Records the moment a run's output shows, if the run has none yet (the restore: its export run's). */
  recordRunAsOf(runId: string, asOf: string): Promise<void>;
  /** The run's status (a step asks whether it was cancelled). */
  runStatus(runId: string): Promise<RunStatus | undefined>;
}

/**
 * While its steps run, the run's own lease is the longest they may take to end: a step's event may
 * wait in Lambda's queue up to QUEUED_RUN_EXPIRY_SECONDS, then run up to Lambda's 15-minute limit.
 * Before that, expireSteps has given up any step no attempt carries on, and closed the run.
 */
export const RUN_LEASE_WHILE_STEPS_MS = (QUEUED_RUN_EXPIRY_SECONDS + 15 * 60) * 1000;

const STEP_LAPSED_LEASE_ERROR = 'The lease expired before the step finished: its worker stopped, probably at the Lambda timeout';
const STEP_NEVER_STARTED_ERROR = `The step was never started: its worker was not invoked within ${QUEUED_RUN_EXPIRY_SECONDS / 60} minutes (see the dead-letter queue)`;

interface StepRow {
  id: string;
  run_id: string;
  position: number;
  name: string;
  status: StepStatus;
  attempts: number;
  lease_expires_at: Date | null;
  lambda_request_id: string | null;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  progress: StepProgress | null;
  result: StepResult | null;
  error: string | null;
  verification: unknown;
  snapshot_imported_at: Date | null;
  input: Record<string, unknown> | null;
  staged_at: Date | null;
}

function iso(value: Date | null): string | null {
  return value === null ? null : value.toISOString();
}

function toStep(row: StepRow): RunStep {
  return {
    id: row.id,
    runId: row.run_id,
    position: row.position,
    name: row.name,
    status: row.status,
    attempts: row.attempts,
    queuedAt: row.queued_at.toISOString(),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    leaseExpiresAt: iso(row.lease_expires_at),
    lambdaRequestId: row.lambda_request_id,
    progress: row.progress,
    result: row.result,
    error: row.error,
    verification: row.verification,
    snapshotImportedAt: iso(row.snapshot_imported_at),
    input: row.input,
    stagedAt: iso(row.staged_at),
  };
}

/** The run's progress: finished steps count their results, running ones their latest progress. */
export function totalSteps(steps: readonly RunStep[]): StepTotals {
  const totals: StepTotals = { schemasDone: 0, schemasTotal: steps.length, tables: 0, rows: 0, bytes: 0, compressedBytes: 0 };
  for (const step of steps) {
    if (step.status === 'succeeded' && step.result) {
      totals.schemasDone += 1;
      totals.tables += step.result.tables;
      totals.rows += step.result.rows;
      totals.bytes += step.result.bytes;
      totals.compressedBytes += step.result.compressedBytes;
    } else if (step.status === 'running' && step.progress) {
      totals.tables += step.progress.tablesDone;
      totals.rows += step.progress.rows;
      totals.bytes += step.progress.bytes;
    }
  }
  return totals;
}

/** How a run whose steps have all ended ends: timed_out over failed over succeeded. */
export function runEnding(steps: readonly RunStep[]): { status: 'succeeded' | 'failed' | 'timed_out'; error: string | null } {
  const unfinished = steps.filter((step) => step.status !== 'succeeded');
  if (unfinished.length === 0) return { status: 'succeeded', error: null };
  const status = unfinished.some((step) => step.status === 'timed_out') ? 'timed_out' : 'failed';
  const causes = unfinished.map((step) => `${step.name} ${step.status === 'timed_out' ? 'timed out' : 'failed'}: ${step.error ?? 'no cause recorded'}`);
  return { status, error: `${unfinished.length} of ${steps.length} steps did not succeed. ${causes.join('; ')}` };
}

export function createStepLedger(sql: Sql): StepLedger {
  const jsonb = (value: unknown) => (value === undefined || value === null ? null : sql.json(value as JSONValue));

  async function stepsOf(db: Sql, runId: string): Promise<RunStep[]> {
    const rows = await db<StepRow[]>`SELECT * FROM jobs.run_steps WHERE run_id = ${runId} ORDER BY position`;
    return rows.map(toStep);
  }

  /**
   * Closes the run if none of its steps is queued or running any more. The run's row is locked
   * first: two steps finishing at the same moment queue here, and whoever comes second reads
   * (in a statement that starts after the first committed) a run already closed.
   */
  async function closeRunIfDone(tx: Sql, runId: string): Promise<ClosedRun | undefined> {
    const [run] = await tx<{ status: string; as_of: Date | null }[]>`SELECT status, as_of FROM jobs.runs WHERE id = ${runId} FOR UPDATE`;
    if (run?.status !== 'running') return undefined;
    await expireLapsedSteps(tx, tx`run_id = ${runId}`);
    const steps = await stepsOf(tx, runId);
    if (steps.length === 0 || steps.some((step) => step.status === 'queued' || step.status === 'running')) return undefined;
    const { status, error } = runEnding(steps);
    const totals = totalSteps(steps);
    const [closed] = await tx<Omit<ClosedRun, 'rows' | 'bytes'>[]>`
      UPDATE jobs.runs
      SET status = ${status},
          finished_at = now(),
          progress = ${sql.json(totals as unknown as JSONValue)},
          result = ${sql.json({
            ...totals,
            // The moment every tarball of the run shows (the export's run snapshot).
            ...(run.as_of && { asOf: run.as_of.toISOString() }),
            steps: steps.map(({ name, status: s, result }) => ({ name, status: s, ...(result ?? {}) })),
          } as unknown as JSONValue)},
          error = ${error}
      WHERE id = ${runId}
      RETURNING id, job, status, error,
        (extract(epoch FROM finished_at - coalesce(started_at, requested_at)) * 1000)::float8 AS "durationMs"`;
    return closed && { ...closed, durationMs: Math.round(closed.durationMs), rows: totals.rows, bytes: totals.bytes };
  }

  async function expireLapsedSteps(db: Sql, which: PendingQuery<Row[]>): Promise<void> {
    await db`
      UPDATE jobs.run_steps
      SET status = 'timed_out', finished_at = lease_expires_at, error = ${STEP_LAPSED_LEASE_ERROR}
      WHERE ${which} AND status = 'running' AND lease_expires_at <= now()`;
    await db`
      UPDATE jobs.run_steps
      SET status = 'timed_out', finished_at = now(), error = ${STEP_NEVER_STARTED_ERROR}
      WHERE ${which} AND status = 'queued' AND queued_at <= now() - ${QUEUED_RUN_EXPIRY_SECONDS} * interval '1 second'`;
  }

  async function findStep(runId: string, name: string): Promise<(StepRow & { lease_live: boolean | null; run_status: string }) | undefined> {
    const [row] = await sql<(StepRow & { lease_live: boolean | null; run_status: string })[]>`
      SELECT s.*, s.lease_expires_at > now() AS lease_live, r.status AS run_status
      FROM jobs.run_steps s JOIN jobs.runs r ON r.id = s.run_id
      WHERE s.run_id = ${runId} AND s.name = ${name}`;
    return row;
  }

  return {
    async addSteps(runId, names, inputs) {
      if (inputs && inputs.length !== names.length) throw new RangeError(`${names.length} steps need as many inputs, not ${inputs.length}`);
      const inputTexts = names.map((_, n) => (inputs ? JSON.stringify(inputs[n]) : null));
      await inTransaction(sql, async (tx) => {
        await tx`
          INSERT INTO jobs.run_steps (run_id, position, name, input)
          SELECT ${runId}, ordinality - 1, name, input::jsonb
          FROM unnest(${tx.array(names as string[])}::text[], ${tx.array(inputTexts as string[])}::text[]) WITH ORDINALITY AS t(name, input, ordinality)
          -- A run cancelled meanwhile gets no steps: none could ever be claimed.
          WHERE EXISTS (SELECT 1 FROM jobs.runs WHERE id = ${runId} AND status = 'running')
          ON CONFLICT (run_id, name) DO NOTHING`;
        await tx`
          UPDATE jobs.runs SET lease_expires_at = now() + ${RUN_LEASE_WHILE_STEPS_MS} * interval '1 millisecond'
          WHERE id = ${runId} AND status = 'running'`;
      });
      return stepsOf(sql, runId);
    },

    listSteps: (runId) => (isUuid(runId) ? stepsOf(sql, runId) : Promise.resolve([])),

    async claim(runId, name, { leaseMs, requestId }) {
      if (!Number.isInteger(leaseMs) || leaseMs <= 0) throw new RangeError(`leaseMs must be a positive whole number, not ${leaseMs}`);
      if (!isUuid(runId)) return { claimed: false, reason: 'not_found' };
      const [claimed] = await sql<StepRow[]>`
        UPDATE jobs.run_steps
        SET status = 'running',
            attempts = attempts + 1,
            started_at = now(),
            finished_at = NULL,
            lease_expires_at = now() + ${leaseMs} * interval '1 millisecond',
            lambda_request_id = ${requestId ?? null},
            progress = NULL,
            result = NULL,
            snapshot_imported_at = NULL,
            staged_at = NULL
        WHERE run_id = ${runId} AND name = ${name}
          AND (status = 'queued' OR ${takeoverAllowed(sql, requestId)})
          AND EXISTS (SELECT 1 FROM jobs.runs r WHERE r.id = run_id AND r.status = 'running')
        RETURNING *`;
      if (claimed) return { claimed: true, step: toStep(claimed) };
      const row = await findStep(runId, name);
      if (!row) return { claimed: false, reason: 'not_found' };
      const step = toStep(row);
      if (row.status === 'succeeded') return { claimed: false, reason: 'already_succeeded', step };
      if (row.status === 'running' && row.lease_live) return { claimed: false, reason: 'running_under_live_lease', step };
      return { claimed: false, reason: 'not_claimable', step };
    },

    async reportProgress(stepId, progress) {
      if (!isUuid(stepId)) return;
      await sql`UPDATE jobs.run_steps SET progress = ${jsonb(progress)} WHERE id = ${stepId} AND status = 'running'`;
    },

    async finish(stepId, ending) {
      return inTransaction(sql, async (tx) => {
        const [row] =
          ending.status === 'succeeded'
            ? await tx<StepRow[]>`
                UPDATE jobs.run_steps
                SET status = 'succeeded', finished_at = now(), result = ${sql.json(ending.result as unknown as JSONValue)}, error = NULL
                WHERE id = ${stepId} AND status = 'running'
                RETURNING *`
            : ending.status === 'cancelled'
            ? await tx<StepRow[]>`
                UPDATE jobs.run_steps
                SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL, error = 'Cancelled while it ran: what it had begun was undone'
                WHERE id = ${stepId} AND status = 'running'
                RETURNING *`
          : ending.final
              ? await tx<StepRow[]>`
                  UPDATE jobs.run_steps
                  SET status = 'failed', finished_at = now(), lease_expires_at = NULL, error = ${ending.error}
                  -- queued too: the coordinator fails a step it could not hand to a worker.
                  WHERE id = ${stepId} AND status IN ('queued', 'running')
                  RETURNING *`
              : // Lambda retries it: queued again, keeping the cause, and the run waits for it.
                await tx<StepRow[]>`
                  UPDATE jobs.run_steps
                  SET status = 'queued', queued_at = now(), lease_expires_at = NULL, error = ${ending.error}
                  WHERE id = ${stepId} AND status = 'running'
                  RETURNING *`;
        if (!row) return { step: undefined, closed: undefined };
        return { step: toStep(row), closed: await closeRunIfDone(tx, row.run_id) };
      });
    },

    closeIfDone: (runId) => inTransaction(sql, (tx) => closeRunIfDone(tx, runId)),

    async expireSteps(job) {
      const runs = await sql<{ id: string }[]>`
        SELECT id FROM jobs.runs r
        WHERE job = ${job} AND status = 'running' AND EXISTS (SELECT 1 FROM jobs.run_steps s WHERE s.run_id = r.id)`;
      for (const { id } of runs) await inTransaction(sql, (tx) => closeRunIfDone(tx, id));
    },

    async recordRunSnapshot(runId, snapshot) {
      const updated = await sql`
        UPDATE jobs.runs SET snapshot_id = ${snapshot.id}, as_of = ${snapshot.asOf}
        WHERE id = ${runId} AND status = 'running' AND snapshot_id IS NULL`;
      if (updated.count !== 1) throw new Error(`Run ${runId} is not running, or has a snapshot already: its snapshot was not recorded`);
    },

    async runSnapshot(runId) {
      if (!isUuid(runId)) return undefined;
      const [row] = await sql<{ id: string | null; as_of: Date | null }[]>`SELECT snapshot_id AS id, as_of FROM jobs.runs WHERE id = ${runId}`;
      return row?.id && row.as_of ? { id: row.id, asOf: row.as_of.toISOString() } : undefined;
    },

    async markSnapshotImported(stepId) {
      await sql`UPDATE jobs.run_steps SET snapshot_imported_at = now() WHERE id = ${stepId} AND status = 'running'`;
    },

    async markStaged(stepId) {
      return inTransaction(sql, async (tx) => {
        const [step] = await tx<{ run_id: string }[]>`SELECT run_id FROM jobs.run_steps WHERE id = ${stepId}`;
        if (!step) throw new Error(`No step has the id ${stepId}`);
        // The run's row first, as finish, closeIfDone and cancel take it: two steps marking at once
        // queue here, and a cancel either comes first (nothing is put in place) or finds the run
        // being put in place and is refused (the run ledger's cancel).
        const [run] = await tx<{ status: RunStatus }[]>`SELECT status FROM jobs.runs WHERE id = ${step.run_id} FOR UPDATE`;
        if (run?.status === 'cancelled') throw new RunCancelledError(step.run_id);
        const marked = await tx`UPDATE jobs.run_steps SET staged_at = now() WHERE id = ${stepId} AND status = 'running'`;
        if (marked.count !== 1) throw new Error(`Step ${stepId} is not running: it was given up (its lease lapsed) or ended`);
        const siblings = await tx<{ name: string; status: StepStatus; staged: boolean }[]>`
          SELECT name, status, staged_at IS NOT NULL AS staged FROM jobs.run_steps WHERE run_id = ${step.run_id} AND id <> ${stepId}`;
        const failed = siblings.filter((s) => s.status === 'failed' || s.status === 'timed_out').map((s) => s.name);
        const last = failed.length === 0 && siblings.every((s) => s.staged && (s.status === 'running' || s.status === 'succeeded'));
        return { last, failed };
      });
    },

    async runStatus(runId) {
      if (!isUuid(runId)) return undefined;
      const [row] = await sql<{ status: RunStatus }[]>`SELECT status FROM jobs.runs WHERE id = ${runId}`;
      return row?.status;
    },

    async recordRunAsOf(runId, asOf) {
      await sql`UPDATE jobs.runs SET as_of = ${asOf} WHERE id = ${runId} AND as_of IS NULL`;
    },

    async stepsAwaitingSnapshot(runId) {
      const rows = await sql<{ name: string }[]>`
        SELECT name FROM jobs.run_steps
        WHERE run_id = ${runId} AND (status = 'queued' OR (status = 'running' AND snapshot_imported_at IS NULL))
        ORDER BY position`;
      return rows.map((row) => row.name);
    },
  };
}
