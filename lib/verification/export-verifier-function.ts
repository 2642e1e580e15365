import type { S3Client } from '@aws-sdk/client-s3';
import { getDatabase } from '../clients/database';
import { readDatabaseSettings, readExportSettings } from '../config';
import type { Env } from '../config';
import { runEventInvocation } from '../event-invocation';
import { readRestoreDispatch } from '../jobs/restore-after-export';
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
  const restoreAfterExport = readRestoreDispatch(env);
  return async (event: unknown): Promise<VerifierResponse> =>
    runEventInvocation(
      env,
      'Export verifier failed',
      () => verifyUploadedTarball(parseObjectCreatedEvent(event), { s3, getSql: () => getDatabase(database), bucket, prefix, restoreAfterExport }),
      (error) => ({ status: 'error', error }) as const,
    );
}
