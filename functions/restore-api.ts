import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { readExportSchemas } from '../lib/config';
import { createRestoreRequest } from '../lib/jobs/restore-request';
import { createStartJobFunction } from '../lib/jobs/start-job-function';
import { logger } from '../lib/logger';

/** POST /jobs/restore — records a restore run and hands it to restoreWorker (the request side of the restore only). */
const request = createRestoreRequest({ schemas: readExportSchemas(process.env) });

export const handler = middy(createStartJobFunction(request, process.env, 'RESTORE_WORKER_FUNCTION')).use(injectLambdaContext(logger));
