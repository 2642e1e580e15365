import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { readTimeLimitedSettings } from '../lib/config';
import { createJobWorkerFunction } from '../lib/jobs/job-functions';
import { createTimeLimitedJob } from '../lib/jobs/time-limited-job';
import { buildEventHandler } from '../lib/event-invocation';
import { logger } from '../lib/logger';

/** Puts SROC licences with time-limited purposes ending soon into the review workflow. */
const worker = buildEventHandler(process.env, () => createJobWorkerFunction(createTimeLimitedJob(readTimeLimitedSettings(process.env)), process.env));

export const handler = middy(worker).use(injectLambdaContext(logger));
