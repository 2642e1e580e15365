import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { HttpError } from '../http/http-error';
import { readJsonBody } from '../http/read-json-body';
import { requesterOf } from '../http/requester';
import type { RequestIdentity } from '../http/requester';
import { errorResponse, jsonResponse } from '../http/responses';
import { RunNotFoundError, RunStateError } from '../runs/run-errors';
import type { JobName, RunLedger, RunWithSteps } from '../runs/run-ledger';
import { parseListRunsQuery } from '../http/list-runs-query';
import type { JobOverview } from './job-overview';
import { isJobName, isUuid } from '../runs/run';

type RunRequest = Pick<APIGatewayProxyEvent, 'pathParameters' | 'queryStringParameters'>;
type ControlRequest = Pick<APIGatewayProxyEvent, 'httpMethod' | 'pathParameters' | 'body' | 'isBase64Encoded' | 'headers'> & RequestIdentity;

/** What a job would do next (job-overview.ts); to its schedule, the listing adds whether it is paused. */
type Overview = (job: JobName) => JobOverview;

/** GET /jobs/runs/{id}: the run as JSON; 400 for an id that is not a uuid, 404 for an unknown one. */
export async function handleGetRunRequest(
  event: RunRequest,
  getLedger: () => Promise<RunLedger>,
  logsLink?: (run: RunWithSteps) => string | undefined,
): Promise<APIGatewayProxyResult> {
  try {
    const id = event.pathParameters?.id ?? '';
    if (!isUuid(id)) throw new HttpError(400, `The run id must be a uuid: ${JSON.stringify(id)}`);
    const run = await (await getLedger()).getWithSteps(id);
    if (!run) throw new HttpError(404, `No run has the id ${id}`);
    const logs = logsLink?.(run);
    return jsonResponse(200, logs ? { ...run, logs } : run);
  } catch (error) {
    return errorResponse(error);
  }
}

/**
 * GET /jobs/{job}/runs?status=&limit=: newest first; 404 for an unknown job, 400 for a bad parameter.
 * `overview` adds what the job would do next (its schedule, the export's schemas) to the answer.
 */
export async function handleListRunsRequest(
  event: RunRequest,
  getLedger: () => Promise<RunLedger>,
  overview?: Overview,
): Promise<APIGatewayProxyResult> {
  try {
    const job = event.pathParameters?.job ?? '';
    if (!isJobName(job)) throw new HttpError(404, `There is no job called ${JSON.stringify(job)}`);
    let query: ReturnType<typeof parseListRunsQuery>;
    try {
      query = parseListRunsQuery(event.queryStringParameters ?? null);
    } catch (error) {
      throw new HttpError(400, (error as Error).message);
    }
    const ledger = await getLedger();
    const runs = await ledger.list(job, query);
    const shown: Record<string, unknown> = { ...overview?.(job) };
    const { schedule } = shown as Partial<JobOverview>;
    if (schedule) {
      const pause = await ledger.schedulePause(job);
      shown.schedule = { ...schedule, paused: pause?.paused ?? false, ...(pause && { pausedBy: pause.by, pausedAt: pause.at }) };
    }
    return jsonResponse(200, { job, runs, ...shown });
  } catch (error) {
    return errorResponse(error);
  }
}

/**
 * POST /jobs/runs/{id}/cancel: a queued or running run becomes cancelled (202, the run); 409 for a
 * run that has ended, 404 for an unknown one, 400 for an id that is not a uuid, 405 for another method.
 */
export async function handleCancelRunRequest(event: ControlRequest, getLedger: () => Promise<RunLedger>): Promise<APIGatewayProxyResult> {
  try {
    if (event.httpMethod !== 'POST') throw new HttpError(405, `Method ${event.httpMethod} is not allowed; use POST`, {}, { Allow: 'POST' });
    const id = event.pathParameters?.id ?? '';
    if (!isUuid(id)) throw new HttpError(400, `The run id must be a uuid: ${JSON.stringify(id)}`);
    try {
      return jsonResponse(202, await (await getLedger()).cancel(id, requesterOf(event)));
    } catch (error) {
      if (error instanceof RunNotFoundError) throw new HttpError(404, `No run has the id ${id}`);
      if (error instanceof RunStateError) {
        throw new HttpError(409, error.reason ? `Run ${id} cannot be cancelled: ${error.reason}` : `Run ${id} has already ended (${error.status}): there is nothing to cancel`, { status: error.status });
      }
      throw error;
    }
  } catch (error) {
    return errorResponse(error);
  }
}

/**
 * PUT /jobs/{job}/schedule with `{"paused": true|false}`: pauses or resumes the job's schedule in
 * the ledger, recording who and when (200, the schedule as listRuns shows it). 404 for an unknown
 * job, 409 for a job with no schedule, 400 for another body, 405 for another method.
 */
export async function handleSchedulePauseRequest(event: ControlRequest, getLedger: () => Promise<RunLedger>, overview: Overview): Promise<APIGatewayProxyResult> {
  try {
    if (event.httpMethod !== 'PUT') throw new HttpError(405, `Method ${event.httpMethod} is not allowed; use PUT`, {}, { Allow: 'PUT' });
    const job = event.pathParameters?.job ?? '';
    if (!isJobName(job)) throw new HttpError(404, `There is no job called ${JSON.stringify(job)}`);
    const body = readJsonBody(event);
    const extra = Object.keys(body ?? {}).filter((key) => key !== 'paused');
    if (!body || typeof body.paused !== 'boolean' || extra.length > 0) {
      throw new HttpError(400, `The body must be {"paused": true} or {"paused": false}${extra.length > 0 ? `; it also had ${extra.map((k) => JSON.stringify(k)).join(', ')}` : ''}`);
    }
    const { schedule } = overview(job);
    if (!schedule) throw new HttpError(409, `The ${job} job has no schedule to pause: it runs only when asked`);
    const pause = await (await getLedger()).setSchedulePause(job, body.paused, requesterOf(event));
    return jsonResponse(200, { job, schedule: { ...schedule, paused: pause.paused, pausedBy: pause.by, pausedAt: pause.at } });
  } catch (error) {
    return errorResponse(error);
  }
}
