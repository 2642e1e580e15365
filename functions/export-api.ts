import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { createS3Client } from '../lib/clients/s3';
import { readExportSettings } from '../lib/config';
import { createExportJob } from '../lib/jobs/export-job';
import { createStartJobFunction } from '../lib/jobs/job-functions';
import { logger } from '../lib/logger';

/** POST /jobs/export — records a run and hands it to exportWorker. */
const settings = readExportSettings(process.env);
const job = createExportJob(settings, createS3Client({ endpoint: settings.s3Endpoint }));

export const handler = middy(createStartJobFunction(job, process.env, 'EXPORT_WORKER_FUNCTION')).use(injectLambdaContext(logger));
