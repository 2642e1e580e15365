import type { Sql } from 'postgres';
import { logger } from '../logger';
import { recordRunMetrics } from '../metrics';
import { createProgressReporter } from '../runs/progress-reporter';
import { RunCancelledError, watchForCancel } from '../runs/cancel-watch';
import { isUuid } from '../runs/run';
import type { ClosedRun, RunStep, StepLedger, StepProgress, StepResult } from '../runs/step-ledger';
import type { StepEvent } from './dispatch';
import { markFailureRecordedOnRun } from './failure-recorded-on-run';
import { WorkerEventError } from './worker-event';

/**
 * The work of one step, e.g. one schema's export. Resolves with the step's result; throws its cause.
 * `afterRunClosed`: called by the step whose ending closed the run (the restore drops what its
 * steps built when the run did not succeed); a failure there is logged, never the step's.
 */
export type StepWork = ((
  step: RunStep,
  context: {
    sql: Sql;
    steps: StepLedger;
    reportProgress(progress: StepProgress): void;
    /** Aborted when the run is cancelled: the work stops and undoes what it began, then throws. */
    signal?: AbortSignal;
  },
) => Promise<StepResult>) & {
  afterRunClosed?: (closed: ClosedRun, context: { sql: Sql; steps: StepLedger }) => Promise<void>;
};

/** The run's ending, then the work's own follow-up (StepWork.afterRunClosed). */
async function onRunClosed(closed: ClosedRun, work: StepWork, deps: StepWorkerDeps): Promise<void> {
  recordRunClosed(closed);
  await work.afterRunClosed?.(closed, deps).catch((error: unknown) => logger.error('After the run closed, its follow-up failed', { runId: closed.id, error: error as Error }));
}

/**
 * Whether a step's failure is one that no retry can mend: the error, or one of its causes, says
 * `final: true` (e.g. RunSnapshotGoneError). Such a step fails for good at its first attempt.
 */
export function isFinalStepFailure(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 10; e = (e as { cause?: unknown }).cause, depth += 1) {
    if ((e as { final?: unknown }).final === true) return true;
  }
  return false;
}

export interface StepWorkerContext {
  /** The Lambda request id of this attempt, recorded on the step. */
  requestId?: string;
  /** How long this attempt may run: the step's lease. */
  leaseMs: number;
  /**
   * Attempts a step gets: 1 + the function's maximumRetryAttempts where Lambda retries (a template
   * test checks they agree), 1 where nothing does (inline, serverless-offline). A failed attempt
   * before the last waits queued for Lambda's retry; the last one fails the step for good.
   */
  maxAttempts: number;
}

export interface StepWorkerDeps {
  sql: Sql;
  steps: StepLedger;
}

export type StepWorkerOutcome =
  | { runId: string; step: string; status: 'succeeded'; result: StepResult; runClosed?: ClosedRun }
  /** A redelivered event for a step that is finished or still running elsewhere: nothing was done. */
  | { runId: string; step: string; status: 'not_claimed'; reason: string }
  /** Its run was cancelled while it ran: it stopped and undid what it had begun. */
  | { runId: string; step: string; status: 'cancelled' };

/** Reads a step event, `{ "runId": "<uuid>", "step": "<name>" }`. Pure; throws WorkerEventError. */
export function parseStepEvent(event: unknown): StepEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new WorkerEventError(`A step event must be a JSON object, not ${Array.isArray(event) ? 'an array' : event === null ? 'null' : typeof event}`);
  }
  const { runId, step, ...extra } = event as Record<string, unknown>;
  if (Object.keys(extra).length > 0) throw new WorkerEventError(`A step event has only "runId" and "step"; it also had ${Object.keys(extra).join(', ')}`);
  if (typeof runId !== 'string' || !isUuid(runId)) throw new WorkerEventError('"runId" must be a uuid');
  if (typeof step !== 'string' || step === '') throw new WorkerEventError('"step" must name a step of the run');
  return { runId, step };
}

/** A fanned-out run ends where its last step closes it: that is where it is logged and measured. */
export function recordRunClosed(closed: ClosedRun): void {
  logger.info('Run closed by its last step', { ...closed });
  const { job, status, durationMs, rows, bytes } = closed;
  // The replaced service's last line of an export, whatever became of its schemas (jobs.md), for
  // the log searches and alerts that look for it; the run's own outcome is in `status`.
  if (job === 'export') logger.info('DB export complete', { runId: closed.id, status, timeTakenMs: durationMs, rows, bytes, error: closed.error });
  recordRunMetrics({ job, outcome: status === 'succeeded' ? 'succeeded' : 'failed', durationMs, rows, bytes });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * One step invocation, its event already read (parseStepEvent): claim the step, do its work, record how it ended; the run's last step
 * closes the run. Rejects when the work failed (after recording it), so Lambda's retries,
 * on-failure destination and alarms see the failure, as for a run.
 */
export async function runStepWorker(event: StepEvent, work: StepWork, context: StepWorkerContext, { sql, steps }: StepWorkerDeps): Promise<StepWorkerOutcome> {
  const { runId, step: name } = event;
  const claim = await steps.claim(runId, name, { leaseMs: context.leaseMs, requestId: context.requestId });
  if (!claim.claimed) {
    if (claim.reason === 'not_found') throw new WorkerEventError(`Run ${runId} has no step ${JSON.stringify(name)}`);
    logger.info('Step not claimed; nothing to do', { runId, step: name, reason: claim.reason });
    return { runId, step: name, status: 'not_claimed', reason: claim.reason };
  }
  const { step } = claim;
  logger.info('Step started', { runId, step: name, attempt: step.attempts });
  const progress = createProgressReporter({ reportProgress: (id, value) => steps.reportProgress(id, value as StepProgress) }, step.id);
  const cancel = watchForCancel(runId, async () => (await steps.runStatus(runId)) === 'cancelled');
  let result: StepResult;
  try {
    result = await work(step, { sql, steps, reportProgress: progress.report, signal: cancel.signal });
  } catch (error) {
    cancel.stop();
    // Cancelled: noticed by the watch, or by the work itself (the restore, when it would put the run in place).
    if (cancel.signal.aborted || error instanceof RunCancelledError || (await steps.runStatus(runId).catch(() => undefined)) === 'cancelled') {
      await progress.flush();
      await steps.finish(step.id, { status: 'cancelled' });
      logger.warn('Step cancelled with its run; what it had begun was undone', { runId, step: name, cause: describe(error) });
      return { runId, step: name, status: 'cancelled' };
    }
    // A failure no retry can mend (the run's snapshot is gone) ends the step at once.
    const final = step.attempts >= context.maxAttempts || isFinalStepFailure(error);
    try {
      await progress.flush();
      const { closed } = await steps.finish(step.id, { status: 'failed', error: describe(error), final });
      logger.error(final ? 'Step failed' : 'Step attempt failed; Lambda retries it', { runId, step: name, attempt: step.attempts, error: error as Error });
      if (closed) await onRunClosed(closed, work, { sql, steps });
    } catch (recordError) {
      // Keep the step's own error for Lambda; the step stays running until a retry of this
      // request takes it over (claim) or its lease ends.
      logger.error('Could not record the failed step', { runId, step: name, error: recordError as Error });
      throw error;
    }
    throw markFailureRecordedOnRun(error);
  }
  cancel.stop();
  await progress.flush();
  const { closed } = await steps.finish(step.id, { status: 'succeeded', result });
  if (closed) await onRunClosed(closed, work, { sql, steps });
  return { runId, step: name, status: 'succeeded', result, ...(closed && { runClosed: closed }) };
}
