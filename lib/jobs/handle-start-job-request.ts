import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { HttpError } from '../http/http-error';
import { readJsonBody } from '../http/read-json-body';
import { requesterOf } from '../http/requester';
import type { RequestIdentity } from '../http/requester';
import { errorResponse, noContent } from '../http/responses';
import { logger } from '../logger';
import { ActiveRunError } from '../runs/run-errors';
import type { RunLedger } from '../runs/run-ledger';
import type { Dispatch } from './dispatch';
import type { JobRequest } from './job-request';
import { InvalidParamsError } from './job-params';

export interface StartJobDeps {
  getLedger(): Promise<RunLedger>;
  dispatch: Dispatch;
}

export type StartJobEvent = Pick<APIGatewayProxyEvent, 'httpMethod' | 'body' | 'isBase64Encoded' | 'headers'> & RequestIdentity;

/**
 * `POST /jobs/<job>`: validate, record a queued run, hand it to the worker, answer 204 with the
 * run's location. Never 204 for work that was not handed over: a failed hand-over marks the run
 * failed and answers 503.
 */
export async function handleStartJobRequest(job: JobRequest, event: StartJobEvent, deps: StartJobDeps): Promise<APIGatewayProxyResult> {
  try {
    if (event.httpMethod !== 'POST') {
      throw new HttpError(405, `Method ${event.httpMethod} is not allowed on /jobs/${job.name}; use POST`, {}, { Allow: 'POST' });
    }
    let params: Record<string, unknown>;
    try {
      params = job.parseParams(readJsonBody(event));
    } catch (error) {
      if (error instanceof InvalidParamsError) throw new HttpError(400, error.message);
      throw error;
    }

    const ledger = await deps.getLedger();
    let runId: string;
    try {
      runId = (await ledger.enqueue(job.name, 'http', params, undefined, requesterOf(event))).id;
    } catch (error) {
      if (error instanceof ActiveRunError) {
        throw new HttpError(409, `${/^[aeiou]/.test(job.name) ? 'An' : 'A'} ${job.name} run is already queued or running`, {
          activeRunId: error.activeRunId,
          location: `/jobs/runs/${error.activeRunId}`,
        });
      }
      throw error;
    }

    try {
      await deps.dispatch({ runId });
    } catch (error) {
      const cause = (error as Error).message;
      logger.error('Could not hand the run to the worker', { job: job.name, runId, error: error as Error });
      try {
        await ledger.fail(runId, `Could not hand the run to the worker: ${cause}`);
      } catch (recordError) {
        // Still 503: the caller must know the job did not start. The run stays queued until it
        // expires (QUEUED_RUN_EXPIRY_SECONDS), which the run's GET route shows meanwhile.
        logger.error('Could not record the failed hand-over on the run', { job: job.name, runId, error: recordError as Error });
      }
      throw new HttpError(503, `The ${job.name} job could not be started; try again later`, { runId });
    }
    logger.info('Run queued', { job: job.name, runId, params });
    return noContent({ Location: `/jobs/runs/${runId}` });
  } catch (error) {
    return errorResponse(error);
  }
}
