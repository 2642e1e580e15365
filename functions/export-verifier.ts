import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { createS3Client } from '../lib/clients/s3';
import { readExportSettings } from '../lib/config';
import { buildEventHandler } from '../lib/event-invocation';
import { logger } from '../lib/logger';
import { createExportVerifierFunction } from '../lib/verification/export-verifier-function';

/** Checks each export tarball against its manifest when it lands in the bucket (EventBridge "Object Created"). */
const verifier = buildEventHandler(process.env, () =>
  createExportVerifierFunction(process.env, createS3Client({ endpoint: readExportSettings(process.env).s3Endpoint })),
);

export const handler = middy(verifier).use(injectLambdaContext(logger));
