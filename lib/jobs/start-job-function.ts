import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { getDatabase } from '../clients/database';
import { ConfigError, readDatabaseSettings, readDispatchSettings } from '../config';
import type { Env } from '../config';
import { createRunLedger } from '../runs/run-ledger';
import { createLambdaDispatch } from './dispatch';
import type { Dispatch } from './dispatch';
import { handleStartJobRequest } from './handle-start-job-request';
import type { JobRequest } from './job-request';

/**
 * The API function of one job: it knows the job's request side only (name, params), the run
 * ledger and the Lambda hand-over, so its bundle holds none of the job's own code. Settings are
 * read here, at module load, so a misconfigured function fails at cold start naming the setting.
 * `dispatch`: local and test wiring only (createInlineStartJobFunction in job-functions.ts).
 */
export function createStartJobFunction(request: JobRequest, env: Env, workerFunctionVariable: string, dispatch?: Dispatch) {
  const database = readDatabaseSettings(env);
  if (!dispatch) {
    const settings = readDispatchSettings(env, workerFunctionVariable);
    if (settings.mode === 'inline') {
      throw new ConfigError(
        'JOB_DISPATCH=inline: an API function hands runs over only by Lambda invoke (under sls offline, set LAMBDA_ENDPOINT to its Lambda port); in-process runs are local wiring (createInlineStartJobFunction)',
      );
    }
    dispatch = createLambdaDispatch(settings);
  }
  const handOver = dispatch;
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> =>
    handleStartJobRequest(request, event, {
      getLedger: async () => createRunLedger(await getDatabase(database)),
      dispatch: handOver,
    });
}
