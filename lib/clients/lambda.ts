import { LambdaClient } from '@aws-sdk/client-lambda';

/** Credentials serverless-offline's Lambda API accepts; used only with a local endpoint. */
const LOCAL_LAMBDA_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/**
 * An asynchronous invoke answers in milliseconds once Lambda has queued the event. These limits
 * make a stuck one fail (2 attempts of at most 1 s to connect and 2 s to answer) well inside the
 * API function's 10 s timeout, so the API can still record the failed hand-over and answer 503
 * rather than be cut off by its own timeout with the run left queued.
 */
const INVOKE_LIMITS = { maxAttempts: 2, requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000, throwOnRequestTimeout: true } };

export function createLambdaClient(endpoint?: string): LambdaClient {
  if (!endpoint) return new LambdaClient(INVOKE_LIMITS);
  return new LambdaClient({
    ...INVOKE_LIMITS,
    endpoint,
    region: process.env.AWS_REGION ?? 'eu-west-2',
    credentials: LOCAL_LAMBDA_CREDENTIALS,
  });
}
