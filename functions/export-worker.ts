import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { createS3Client } from '../lib/clients/s3';
import { readExportSettings } from '../lib/config';
import { createExportJob } from '../lib/jobs/export-job';
import { createJobWorkerFunction } from '../lib/jobs/job-functions';
import { logger } from '../lib/logger';

/** Exports every configured schema to S3; invoked by exportApi, a schedule, or by hand. */
const settings = readExportSettings(process.env);
// In AWS a container runs one invocation at a time, so its /tmp holds no other live run; sls
// invoke local and sls offline set IS_LOCAL / IS_OFFLINE and share the machine's temp folder.
const inAws = Boolean(process.env.AWS_LAMBDA_FUNCTION_NAME) && !process.env.IS_OFFLINE && process.env.IS_LOCAL !== 'true';
const job = createExportJob(settings, createS3Client({ endpoint: settings.s3Endpoint }), { removeLeftoverRunFolders: inAws });

export const handler = middy(createJobWorkerFunction(job, process.env)).use(injectLambdaContext(logger));
