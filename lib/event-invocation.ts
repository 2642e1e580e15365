import { closeDatabase } from './clients/database';
import { runsOffline, runsUnderInvokeLocal } from './config';
import type { Env } from './config';
import { logger } from './logger';

/**
 * Runs the work of an asynchronously invoked handler (a worker, the verifier) as each place it
 * runs needs. In AWS a failure is thrown, so Lambda's retries and on-failure destination see it.
 * serverless-offline lets an error thrown by an Event-invoked handler end the whole emulator, so
 * offline it is logged and answered instead (`offlineAnswer`). `serverless invoke local` runs one
 * invocation per process, so there the database client is closed afterwards and the process exits.
 */
export async function runEventInvocation<T, F>(
  env: Env,
  failureMessage: string,
  work: () => Promise<T>,
  offlineAnswer: (message: string) => F,
  logFields: Record<string, unknown> = {},
): Promise<T | F> {
  try {
    return await work();
  } catch (error) {
    if (runsOffline(env)) {
      logger.error(failureMessage, { ...logFields, error: error as Error });
      return offlineAnswer((error as Error).message);
    }
    throw error;
  } finally {
    if (runsUnderInvokeLocal(env)) await closeDatabase();
  }
}

/**
 * Builds an asynchronously invoked handler at cold start (reading its settings). In AWS and under
 * `sls invoke local` a failure is thrown, so the function stops at cold start naming the setting.
 * Under serverless-offline that throw would end the whole emulator (an Event invocation's error is
 * not caught there), so the handler it gets instead logs the failure and answers it at each
 * invocation, and the other functions go on.
 */
export function buildEventHandler<H extends (...args: never[]) => unknown>(env: Env, build: () => H): H {
  try {
    return build();
  } catch (error) {
    if (!runsOffline(env)) throw error;
    const message = (error as Error).message;
    logger.error('The function could not start: its settings were refused at cold start', { error: error as Error });
    return (async () => ({ status: 'failed', error: message })) as unknown as H;
  }
}
