import type { Sql } from 'postgres';
import { logger } from '../logger';
import { recordRunMetrics } from '../metrics';
import { createProgressReporter } from '../runs/progress-reporter';
import { watchForCancel } from '../runs/cancel-watch';
import { ActiveRunError, RunStateError } from '../runs/run-errors';
import type { RunLedger, RunStatus } from '../runs/run-ledger';
import { isFailureRecordedOnRun, markFailureRecordedOnRun } from './failure-recorded-on-run';
import { STEPS_CLOSE_THE_RUN } from './job';
import type { Job } from './job';
import { InvalidParamsError } from './job-params';
import { parseWorkerEvent, WorkerEventError } from './worker-event';
import type { WorkerRequest } from './worker-event';

export interface WorkerContext {
  /** The Lambda request id of this attempt, recorded on the run. */
  requestId?: string;
  /** How long this attempt may run: the run's lease. */
  leaseMs: number;
}

export interface WorkerDeps {
  sql: Sql;
  ledger: RunLedger;
}

export type WorkerOutcome =
  | { runId: string; status: Extract<RunStatus, 'succeeded'>; result: unknown }
  | { runId: string; status: 'skipped'; activeRunId?: string; reason?: 'paused' }
  /** Cancelled (POST /jobs/runs/{id}/cancel) while it ran, or before: what it had done is undone. */
  | { runId: string; status: 'cancelled' }
  /** Fanned out: the run's steps are under way in their own invocations, and the last closes the run. */
  | { runId: string; status: 'running'; steps: string[] }
  /** A redelivered event for a run that is finished or still running elsewhere: nothing was done. */
  | { runId: string; status: 'not_claimed'; reason: string };

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A WorkerRequest whose input has been read as the job's params. */
export type JobWorkerRequest =
  | Extract<WorkerRequest, { kind: 'run' }>
  | (Omit<Extract<WorkerRequest, { kind: 'new' }>, 'input'> & { params: Record<string, unknown> });

/**
 * Reads a worker event and, for a new run, the job's params from it. Pure: a worker checks its
 * event with it before connecting to anything. Throws WorkerEventError saying what is wrong.
 */
export function parseJobWorkerEvent(job: Job, event: unknown): JobWorkerRequest {
  const request = parseWorkerEvent(event);
  if (request.kind !== 'new') return request;
  try {
    return { kind: 'new', trigger: request.trigger, params: job.parseParams(request.input) };
  } catch (error) {
    if (error instanceof InvalidParamsError) throw new WorkerEventError(error.message);
    throw error;
  }
}

/**
 * One worker invocation, its event already read (parseJobWorkerEvent): find or record the run, claim it, do the job, record how it ended.
 * Rejects when the job failed (after recording it), so Lambda's retries and on-failure
 * destination see the failure.
 */
export async function runJobWorker(job: Job, request: JobWorkerRequest, context: WorkerContext, { sql, ledger }: WorkerDeps): Promise<WorkerOutcome> {
  let runId: string;
  // Lambda retries an asynchronous invocation with the same request id: a scheduled or manual
  // event that already recorded a run resumes that run (or finds it done) rather than add one.
  const earlier = request.kind === 'new' && context.requestId !== undefined ? await ledger.findByRequestId(job.name, context.requestId) : undefined;
  if (earlier) {
    runId = earlier.id;
  } else if (request.kind === 'new') {
    const { params } = request;
    // A paused schedule (PUT /jobs/{job}/schedule) records that it fired, and does nothing else.
    const pause = request.trigger === 'schedule' ? await ledger.schedulePause(job.name) : undefined;
    if (pause?.paused) {
      const skipped = await ledger.recordSkipped(job.name, 'schedule', { pause });
      logger.warn('Run skipped: the schedule is paused', { job: job.name, runId: skipped.id, pausedBy: pause.by, pausedAt: pause.at });
      recordRunMetrics({ job: job.name, outcome: 'skipped' });
      return { runId: skipped.id, status: 'skipped', reason: 'paused' };
    }
    try {
      runId = (await ledger.enqueue(job.name, request.trigger, params, context.requestId)).id;
    } catch (error) {
      if (!(error instanceof ActiveRunError)) throw error;
      const skipped = await ledger.recordSkipped(job.name, request.trigger, { activeRunId: error.activeRunId });
      logger.warn('Run skipped: another run of this job is active', { job: job.name, runId: skipped.id, activeRunId: error.activeRunId });
      recordRunMetrics({ job: job.name, outcome: 'skipped' });
      return { runId: skipped.id, status: 'skipped', activeRunId: error.activeRunId };
    }
  } else {
    runId = request.runId;
  }

  const claim = await ledger.claim(runId, { job: job.name, leaseMs: context.leaseMs, requestId: context.requestId });
  if (!claim.claimed) {
    if (claim.reason === 'not_found') throw new WorkerEventError(`No ${job.name} run has the id ${runId}`);
    logger.info('Run not claimed; nothing to do', { job: job.name, runId, reason: claim.reason });
    return { runId, status: 'not_claimed', reason: claim.reason };
  }

  logger.info('Run started', { job: job.name, runId, attempt: claim.run.attempts, trigger: claim.run.trigger });
  const progress = createProgressReporter(ledger, runId);
  const started = performance.now();
  const elapsedMs = () => Math.round(performance.now() - started);
  const deadline = Date.now() + context.leaseMs;
  const isCancelled = async () => (await ledger.get(runId))?.status === 'cancelled';
  const cancel = watchForCancel(runId, isCancelled);
  const cancelled = (): WorkerOutcome => {
    logger.warn('Run cancelled; what it had done was undone', { job: job.name, runId });
    recordRunMetrics({ job: job.name, outcome: 'cancelled', durationMs: elapsedMs() });
    return { runId, status: 'cancelled' };
  };
  try {
    const result = await job.run(job.parseParams(claim.run.params), { sql, runId, reportProgress: progress.report, deadline, signal: cancel.signal });
    await progress.flush();
    if (result === STEPS_CLOSE_THE_RUN) return await stepsOutcome(ledger, runId);
    try {
      await ledger.succeed(runId, result);
    } catch (error) {
      // Cancelled after the work was done (its last moment): the run stays cancelled, as asked.
      if (error instanceof RunStateError && error.status === 'cancelled') return cancelled();
      throw error;
    }
    recordRunMetrics({ job: job.name, outcome: 'succeeded', durationMs: elapsedMs(), ...job.measure?.(result) });
    return { runId, status: 'succeeded', result };
  } catch (error) {
    // A fanned-out run that its steps closed as failed: recorded, and measured where it closed.
    if (isFailureRecordedOnRun(error)) throw error;
    // Cancelled: the ledger says so already; Lambda must not try it again.
    if (cancel.signal.aborted || (await isCancelled().catch(() => false))) return cancelled();
    recordRunMetrics({ job: job.name, outcome: 'failed', durationMs: elapsedMs() });
    try {
      await progress.flush();
      await ledger.fail(runId, describe(error));
    } catch (recordError) {
      // Keep the job's own error for Lambda; the run stays running until a retry of this request
      // takes it over (claim) or its lease ends.
      logger.error('Could not record the failed run', { job: job.name, runId, error: recordError as Error });
      throw error;
    }
    throw markFailureRecordedOnRun(error);
  } finally {
    cancel.stop();
  }
}

/**
 * After a fan-out: the run as its steps left it. Steps carried out in this process (inline) have
 * closed it already; a failed run rejects as any failed job does, with the failure already recorded.
 */
async function stepsOutcome(ledger: RunLedger, runId: string): Promise<WorkerOutcome> {
  const run = await ledger.getWithSteps(runId);
  if (run?.status === 'succeeded') return { runId, status: 'succeeded', result: run.result };
  if (run?.status === 'failed' || run?.status === 'timed_out') throw markFailureRecordedOnRun(new Error(run.error ?? `The run ${run.status}`));
  if (run?.status === 'cancelled') return { runId, status: 'cancelled' };
  logger.info('Run handed to its steps', { runId, steps: run?.steps.map((step) => step.name) });
  return { runId, status: 'running', steps: (run?.steps ?? []).map((step) => step.name) };
}
