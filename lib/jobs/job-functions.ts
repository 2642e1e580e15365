import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { closeDatabase, getDatabase } from '../clients/database';
import { readDatabaseSettings, readDispatchSettings } from '../config';
import type { DatabaseSettings, Env } from '../config';
import { logger } from '../logger';
import { createRunLedger } from '../runs/run-ledger';
import { createDispatch } from './dispatch';
import { handleStartJobRequest } from './handle-start-job-request';
import type { Job } from './job';
import { parseJobWorkerEvent, runJobWorker } from './run-job-worker';
import type { WorkerDeps, WorkerOutcome } from './run-job-worker';

/** The lease of a run carried out in-process (inline dispatch): as long as a Lambda may run. */
const INLINE_LEASE_MS = 15 * 60 * 1000;

async function workerDeps(database: DatabaseSettings): Promise<WorkerDeps> {
  const sql = await getDatabase(database);
  return { sql, ledger: createRunLedger(sql) };
}

/**
 * The API function of one job. Settings are read here, at module load, so a misconfigured
 * function fails at cold start naming the setting.
 */
export function createStartJobFunction(job: Job, env: Env, workerFunctionVariable: string) {
  const database = readDatabaseSettings(env);
  const dispatch = createDispatch(readDispatchSettings(env, workerFunctionVariable), async (event) =>
    runJobWorker(job, event, { leaseMs: INLINE_LEASE_MS }, await workerDeps(database)),
  );
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> =>
    handleStartJobRequest(job, event, {
      getLedger: async () => (await workerDeps(database)).ledger,
      dispatch,
    });
}

export type WorkerResponse = WorkerOutcome | { status: 'failed'; error: string };

/** The worker function of one job: invoked by its API function, a schedule, or by hand. */
export function createJobWorkerFunction(job: Job, env: Env) {
  const database = readDatabaseSettings(env);
  return async (event: unknown, context: Context): Promise<WorkerResponse> => {
    try {
      // A malformed event is refused before anything is connected (and so whatever is down).
      parseJobWorkerEvent(job, event);
      return await runJobWorker(
        job,
        event,
        { requestId: context.awsRequestId, leaseMs: context.getRemainingTimeInMillis() },
        await workerDeps(database),
      );
    } catch (error) {
      // serverless-offline lets an error thrown by an Event-invoked handler end the whole
      // emulator; offline the failure is logged and returned instead (the run records it too).
      if (env.IS_OFFLINE) {
        logger.error('Worker failed', { job: job.name, error: error as Error });
        return { status: 'failed', error: (error as Error).message };
      }
      throw error;
    } finally {
      // `serverless invoke local` sets IS_LOCAL and runs one invocation per process: let it exit.
      if (env.IS_LOCAL === 'true') await closeDatabase();
    }
  };
}
