import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { createS3Client } from '../lib/clients/s3';
import { readRestoreSettings } from '../lib/config';
import { createStepWorkerFunction } from '../lib/jobs/job-functions';
import { createRestoreStepWork, RESTORE_STEP_ATTEMPTS } from '../lib/jobs/restore-steps';
import { buildEventHandler } from '../lib/event-invocation';
import { logger } from '../lib/logger';
import { createRestoreTarget } from '../lib/restore/restore-target';

/** Restores one schema of a restore run (one step), invoked asynchronously by restoreWorker; the run's last step puts them all in place. */
const worker = buildEventHandler(process.env, () => {
  const settings = readRestoreSettings(process.env);
  const work = createRestoreStepWork(settings, createS3Client({ endpoint: settings.s3Endpoint }), createRestoreTarget(settings.target));
  return createStepWorkerFunction(work, process.env, RESTORE_STEP_ATTEMPTS);
});

export const handler = middy(worker).use(injectLambdaContext(logger));
