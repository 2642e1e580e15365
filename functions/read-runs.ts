import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { getDatabase } from '../lib/clients/database';
import { readDatabaseSettings } from '../lib/config';
import { handleGetRunRequest, handleListRunsRequest } from '../lib/jobs/handle-run-requests';
import { createJobOverview } from '../lib/jobs/job-overview';
import { readRunLogsLink } from '../lib/runs/logs-insights-link';
import { logger } from '../lib/logger';
import { createRunLedger } from '../lib/runs/run-ledger';

/** The two read-only routes of the run history; each is its own Lambda function (see serverless.yml). */
const database = readDatabaseSettings(process.env);
const getLedger = async () => createRunLedger(await getDatabase(database));
const overview = createJobOverview(process.env);
const logsLink = readRunLogsLink(process.env);

/** GET /jobs/runs/{id} */
export const getRun = middy(
  async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => handleGetRunRequest(event, getLedger, logsLink),
).use(injectLambdaContext(logger));

/** GET /jobs/{job}/runs?status=&limit= */
export const listRuns = middy(
  async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => handleListRunsRequest(event, getLedger, overview),
).use(injectLambdaContext(logger));
