import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { createS3Client } from '../lib/clients/s3';
import { readExportSettings, runsInAws } from '../lib/config';
import { createExportStepWork, EXPORT_STEP_ATTEMPTS } from '../lib/jobs/export-steps';
import { createStepWorkerFunction } from '../lib/jobs/job-functions';
import { readRestoreDispatch } from '../lib/jobs/restore-after-export';
import { buildEventHandler } from '../lib/event-invocation';
import { logger } from '../lib/logger';

/** Exports one schema of an export run (one step), invoked asynchronously by exportWorker. */
const worker = buildEventHandler(process.env, () => {
  const settings = readExportSettings(process.env);
  // In AWS a container runs one invocation at a time, so its /tmp holds no other live step; sls
  // invoke local and sls offline set IS_LOCAL / IS_OFFLINE and share the machine's temp folder.
  const work = createExportStepWork(settings, createS3Client({ endpoint: settings.s3Endpoint }), {
    removeLeftovers: runsInAws(process.env),
    restoreAfterExport: readRestoreDispatch(process.env),
  });
  return createStepWorkerFunction(work, process.env, EXPORT_STEP_ATTEMPTS);
});

export const handler = middy(worker).use(injectLambdaContext(logger));
