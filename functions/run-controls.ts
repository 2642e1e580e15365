import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { getDatabase } from '../lib/clients/database';
import { readDatabaseSettings } from '../lib/config';
import { handleCancelRunRequest, handleSchedulePauseRequest } from '../lib/jobs/handle-run-requests';
import { createJobOverview } from '../lib/jobs/job-overview';
import { logger } from '../lib/logger';
import { createRunLedger } from '../lib/runs/run-ledger';

/** What an operator does to a run or a schedule; each route is its own Lambda function (see serverless.yml). */
const database = readDatabaseSettings(process.env);
const getLedger = async () => createRunLedger(await getDatabase(database));
const overview = createJobOverview(process.env);

/** POST /jobs/runs/{id}/cancel */
export const cancelRun = middy(
  async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => handleCancelRunRequest(event, getLedger),
).use(injectLambdaContext(logger));

/** PUT /jobs/{job}/schedule */
export const pauseSchedule = middy(
  async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => handleSchedulePauseRequest(event, getLedger, overview),
).use(injectLambdaContext(logger));
