import type { S3Client } from '@aws-sdk/client-s3';
import { closeDatabase, getDatabase } from '../clients/database';
import { readDatabaseSettings, readExportSettings, runsOffline, runsUnderInvokeLocal } from '../config';
import type { Env } from '../config';
import { logger } from '../logger';
import { parseObjectCreatedEvent } from './object-created-event';
import { verifyUploadedTarball } from './verify-uploaded-tarball';
import type { VerifierOutcome } from './verify-uploaded-tarball';

export type VerifierResponse = VerifierOutcome | { status: 'error'; error: string };

/**
 * The exportVerifier function: started by the export bucket's "Object Created" events for
 * `<prefix>*.tgz` (EventBridge), or by hand with such an event. Settings are read here, at cold start.
 */
export function createExportVerifierFunction(env: Env, s3: S3Client) {
  const { bucket, prefix } = readExportSettings(env);
  const database = readDatabaseSettings(env);
  return async (event: unknown): Promise<VerifierResponse> => {
    try {
      return await verifyUploadedTarball(parseObjectCreatedEvent(event), { s3, getSql: () => getDatabase(database), bucket, prefix });
    } catch (error) {
      // serverless-offline lets an error thrown by an Event-invoked handler end the whole emulator.
      if (runsOffline(env)) {
        logger.error('Export verifier failed', { error: error as Error });
        return { status: 'error', error: (error as Error).message };
      }
      throw error;
    } finally {
      // `serverless invoke local` runs one invocation per process: let it exit.
      if (runsUnderInvokeLocal(env)) await closeDatabase();
    }
  };
}
