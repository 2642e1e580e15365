import process from 'node:process';

/** The key `sls offline` accepts when JOBS_API_KEY is not set (local use only; never deployed). */
export const LOCAL_DEFAULT_API_KEY = 'local-jobs-api-key';

/**
 * Gives the API key declared in serverless.yml (provider.apiGateway.apiKeys) a value, for
 * `sls offline` only: JOBS_API_KEY from the shell, or LOCAL_DEFAULT_API_KEY.
 *
 * Why a plugin: serverless-offline accepts only key values written in serverless.yml, and any value
 * written there would also go into the packaged CloudFormation template. Setting it here, in a hook
 * that runs only for `offline`, keeps the deployed key without a Value, so API Gateway generates it.
 */
export default class OfflineApiKey {
  constructor(serverless) {
    const setLocalKeyValue = () => {
      const value = process.env.JOBS_API_KEY?.trim() || LOCAL_DEFAULT_API_KEY;
      const apiKeys = serverless.service.provider.apiGateway?.apiKeys ?? [];
      for (const [index, key] of apiKeys.entries()) {
        apiKeys[index] = typeof key === 'string' ? { name: key, value } : { ...key, value };
      }
    };
    this.hooks = {
      // `sls offline` runs the `offline:start` hook; `sls offline start` runs `offline:start:init`.
      'before:offline:start': setLocalKeyValue,
      'before:offline:start:init': setLocalKeyValue,
    };
  }
}
