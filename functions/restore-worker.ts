import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { createS3Client } from '../lib/clients/s3';
import { readRestoreSettings } from '../lib/config';
import { createJobWorkerFunction } from '../lib/jobs/job-functions';
import { createFannedOutRestore } from '../lib/jobs/restore-steps';
import { buildEventHandler } from '../lib/event-invocation';
import { logger } from '../lib/logger';

/**
 * The restore's coordinator; invoked by restoreApi, by an export run that asked for a restore, or by
 * hand. Creates every schema's staging copy in the target and hands each schema to
 * restoreSchemaWorker (in this process under `sls invoke local`).
 */
const worker = buildEventHandler(process.env, () => {
  const settings = readRestoreSettings(process.env);
  const { job } = createFannedOutRestore(process.env, settings, createS3Client({ endpoint: settings.s3Endpoint }));
  return createJobWorkerFunction(job, process.env);
});

export const handler = middy(worker).use(injectLambdaContext(logger));
