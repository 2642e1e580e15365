import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { readTimeLimitedSettings } from '../lib/config';
import { createJobWorkerFunction } from '../lib/jobs/job-functions';
import { createTimeLimitedJob } from '../lib/jobs/time-limited-job';
import { logger } from '../lib/logger';

/** Puts SROC licences with time-limited purposes ending soon into the review workflow. */
const job = createTimeLimitedJob(readTimeLimitedSettings(process.env));

export const handler = middy(createJobWorkerFunction(job, process.env)).use(injectLambdaContext(logger));
