import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { createS3Client } from '../lib/clients/s3';
import { readExportSettings } from '../lib/config';
import { createExportJob } from '../lib/jobs/export-job';
import { createJobWorkerFunction } from '../lib/jobs/job-functions';
import { logger } from '../lib/logger';

/** Exports every configured schema to S3; invoked by exportApi, a schedule, or by hand. */
const settings = readExportSettings(process.env);
const job = createExportJob(settings, createS3Client({ endpoint: settings.s3Endpoint }));

export const handler = middy(createJobWorkerFunction(job, process.env)).use(injectLambdaContext(logger));
