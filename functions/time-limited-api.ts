import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { readTimeLimitedSettings } from '../lib/config';
import { createStartJobFunction } from '../lib/jobs/job-functions';
import { createTimeLimitedJob } from '../lib/jobs/time-limited-job';
import { logger } from '../lib/logger';

/** POST /jobs/time-limited — records a run and hands it to timeLimitedWorker. */
const job = createTimeLimitedJob(readTimeLimitedSettings(process.env));

export const handler = middy(createStartJobFunction(job, process.env, 'TIME_LIMITED_WORKER_FUNCTION')).use(
  injectLambdaContext(logger),
);
