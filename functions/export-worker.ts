import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { createS3Client } from '../lib/clients/s3';
import { readExportSettings } from '../lib/config';
import { createFannedOutExport } from '../lib/jobs/export-steps';
import { createJobWorkerFunction } from '../lib/jobs/job-functions';
import { buildEventHandler } from '../lib/event-invocation';
import { logger } from '../lib/logger';

/**
 * The export's coordinator; invoked by exportApi, a schedule, or by hand. Records one step per
 * schema and hands each to exportSchemaWorker (in this process under `sls invoke local`).
 */
const worker = buildEventHandler(process.env, () => {
  const settings = readExportSettings(process.env);
  const { job } = createFannedOutExport(process.env, settings, createS3Client({ endpoint: settings.s3Endpoint }));
  return createJobWorkerFunction(job, process.env);
});

export const handler = middy(worker).use(injectLambdaContext(logger));
