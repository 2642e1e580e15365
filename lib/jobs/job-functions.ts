import type { Context } from 'aws-lambda';
import { connectDatabase, getDatabase, readDatabaseUrlParameter } from '../clients/database';
import { readDatabaseSettings, runsOffline } from '../config';
import type { DatabaseSettings, Env } from '../config';
import { runEventInvocation } from '../event-invocation';
import { createRunLedger } from '../runs/run-ledger';
import { createStepLedger } from '../runs/step-ledger';
import type { RunEvent, StepEvent } from './dispatch';
import { createInlineDispatch } from './inline-dispatch';
import type { Job } from './job';
import { parseJobWorkerEvent, runJobWorker } from './run-job-worker';
import type { WorkerDeps, WorkerOutcome } from './run-job-worker';
import { parseStepEvent, runStepWorker } from './run-step-worker';
import type { StepWork, StepWorkerDeps, StepWorkerOutcome } from './run-step-worker';
import { createStartJobFunction } from './start-job-function';

/** The lease of a run carried out in-process (inline dispatch): as long as a Lambda may run. */
const INLINE_LEASE_MS = 15 * 60 * 1000;

async function workerDeps(database: DatabaseSettings): Promise<WorkerDeps> {
  const sql = await getDatabase(database);
  return { sql, ledger: createRunLedger(sql) };
}

/**
 * An API function that runs the worker in this process and awaits it (JOB_DISPATCH=inline's
 * meaning before the API functions were slimmed): local and test wiring only. The deployed API
 * functions use createStartJobFunction, whose bundles do not hold the job's code.
 */
export function createInlineStartJobFunction(job: Job, env: Env) {
  const database = readDatabaseSettings(env);
  const dispatch = createInlineDispatch(async (event: RunEvent) =>
    runJobWorker(job, { kind: 'run', runId: event.runId }, { leaseMs: INLINE_LEASE_MS }, await workerDeps(database)),
  );
  return createStartJobFunction(job, env, '', dispatch);
}

export type WorkerResponse = WorkerOutcome | { status: 'failed'; error: string };

/**
 * A step worker function (the export's schema worker): invoked asynchronously by the coordinator
 * with `{ runId, step }`, once per step. `maxAttempts`: see StepWorkerContext.
 */
export function createStepWorkerFunction(work: StepWork, env: Env, maxAttempts: number) {
  const database = readDatabaseSettings(env);
  // serverless-offline does not retry an Event invocation: its first attempt is its last.
  const attempts = runsOffline(env) ? 1 : maxAttempts;
  return async (event: unknown, context: Context): Promise<StepWorkerOutcome | { status: 'failed'; error: string }> =>
    runEventInvocation(
      env,
      'Step worker failed',
      async () =>
        runStepWorker(
          parseStepEvent(event),
          work,
          { requestId: context.awsRequestId, leaseMs: context.getRemainingTimeInMillis(), maxAttempts: attempts },
          await stepWorkerDeps(database),
        ),
      (error) => ({ status: 'failed', error }) as const,
    );
}

/**
 * Runs a step in this process (inline dispatch): the lease as long as a Lambda may run, one
 * attempt, and a database client of its own, as each step has its own container in AWS, so steps
 * running side by side never wait on one another's connections.
 */
export async function runStepInline(work: StepWork, event: StepEvent, database: DatabaseSettings): Promise<StepWorkerOutcome> {
  const sql = connectDatabase(database.url ?? (await readDatabaseUrlParameter(database.urlParameter!)));
  try {
    return await runStepWorker(event, work, { leaseMs: INLINE_LEASE_MS, maxAttempts: 1 }, { sql, steps: createStepLedger(sql) });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function stepWorkerDeps(database: DatabaseSettings): Promise<StepWorkerDeps> {
  const sql = await getDatabase(database);
  return { sql, steps: createStepLedger(sql) };
}

/** The worker function of one job: invoked by its API function, a schedule, or by hand. */
export function createJobWorkerFunction(job: Job, env: Env) {
  const database = readDatabaseSettings(env);
  return async (event: unknown, context: Context): Promise<WorkerResponse> =>
    runEventInvocation(
      env,
      'Worker failed',
      async () => {
        // Read once, and before anything is connected: a malformed event is refused whatever is down.
        const request = parseJobWorkerEvent(job, event);
        return runJobWorker(job, request, { requestId: context.awsRequestId, leaseMs: context.getRemainingTimeInMillis() }, await workerDeps(database));
      },
      (error) => ({ status: 'failed', error }) as const,
      { job: job.name },
    );
}
