import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { createS3Client } from '../lib/clients/s3';
import { readExportSettings } from '../lib/config';
import { createFannedOutExport } from '../lib/jobs/export-steps';
import { createStartJobFunction } from '../lib/jobs/job-functions';
import { logger } from '../lib/logger';

/** POST /jobs/export — records a run and hands it to exportWorker. */
const settings = readExportSettings(process.env);
const { job } = createFannedOutExport(process.env, settings, createS3Client({ endpoint: settings.s3Endpoint }));

export const handler = middy(createStartJobFunction(job, process.env, 'EXPORT_WORKER_FUNCTION')).use(injectLambdaContext(logger));
