import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { HttpError } from '../http/http-error';
import { errorResponse, jsonResponse } from '../http/responses';
import type { JobName, RunLedger } from '../runs/run-ledger';
import { parseListRunsQuery } from '../http/list-runs-query';
import { isJobName, isUuid } from '../runs/run';

type RunRequest = Pick<APIGatewayProxyEvent, 'pathParameters' | 'queryStringParameters'>;

/** GET /jobs/runs/{id}: the run as JSON; 400 for an id that is not a uuid, 404 for an unknown one. */
export async function handleGetRunRequest(event: RunRequest, getLedger: () => Promise<RunLedger>): Promise<APIGatewayProxyResult> {
  try {
    const id = event.pathParameters?.id ?? '';
    if (!isUuid(id)) throw new HttpError(400, `The run id must be a uuid: ${JSON.stringify(id)}`);
    const run = await (await getLedger()).getWithSteps(id);
    if (!run) throw new HttpError(404, `No run has the id ${id}`);
    return jsonResponse(200, run);
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
  overview?: (job: JobName) => Record<string, unknown>,
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
    const runs = await (await getLedger()).list(job, query);
    return jsonResponse(200, { job, runs, ...overview?.(job) });
  } catch (error) {
    return errorResponse(error);
  }
}
