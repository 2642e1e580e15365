import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { readExportSchemas } from '../lib/config';
import { createExportRequest } from '../lib/jobs/export-request';
import { createStartJobFunction } from '../lib/jobs/start-job-function';
import { logger } from '../lib/logger';

/** POST /jobs/export — records a run and hands it to exportWorker (the request side of the export only). */
const request = createExportRequest({ schemas: readExportSchemas(process.env) });

export const handler = middy(createStartJobFunction(request, process.env, 'EXPORT_WORKER_FUNCTION')).use(injectLambdaContext(logger));
