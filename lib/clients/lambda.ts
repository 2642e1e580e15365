import { LambdaClient } from '@aws-sdk/client-lambda';

/** Credentials serverless-offline's Lambda API accepts; used only with a local endpoint. */
const LOCAL_LAMBDA_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export function createLambdaClient(endpoint?: string): LambdaClient {
  if (!endpoint) return new LambdaClient({});
  return new LambdaClient({
    endpoint,
    region: process.env.AWS_REGION ?? 'eu-west-2',
    credentials: LOCAL_LAMBDA_CREDENTIALS,
    maxAttempts: 2,
  });
}
