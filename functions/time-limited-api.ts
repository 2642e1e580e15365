import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { timeLimitedRequest } from '../lib/jobs/time-limited-request';
import { createStartJobFunction } from '../lib/jobs/start-job-function';
import { logger } from '../lib/logger';

/** POST /jobs/time-limited — records a run and hands it to timeLimitedWorker (the request side of the job only). */
export const handler = middy(createStartJobFunction(timeLimitedRequest, process.env, 'TIME_LIMITED_WORKER_FUNCTION')).use(
  injectLambdaContext(logger),
);
