import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { createS3Client } from '../lib/clients/s3';
import { readExportSettings } from '../lib/config';
import { logger } from '../lib/logger';
import { createExportVerifierFunction } from '../lib/verification/export-verifier-function';

/** Checks each export tarball against its manifest when it lands in the bucket (EventBridge "Object Created"). */
const s3 = createS3Client({ endpoint: readExportSettings(process.env).s3Endpoint });

export const handler = middy(createExportVerifierFunction(process.env, s3)).use(injectLambdaContext(logger));
