import type { Sql } from 'postgres';
import { PutObjectTaggingCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { logger } from '../logger';
import type { CreatedObject } from './object-created-event';
import { isNotFound, openTarballObject } from './open-tarball-object';
import type { Dispatch } from '../jobs/dispatch';
import { startRestoreAfterExport } from '../jobs/restore-after-export';
import { recordVerificationOnStep } from './record-verification';
import type { RecordOutcome, StepVerification } from './record-verification';
import { verifyTarball } from './verify-tarball';

/** The object tag that says whether the tarball was verified: `verified=true|false`. */
export const VERIFIED_TAG = 'verified';

/** The user metadata the export's upload carries (x-amz-meta-run-id, x-amz-meta-schema). */
export const RUN_ID_METADATA = 'run-id';
export const SCHEMA_METADATA = 'schema';

/** The message of the error log a failed verification writes; the alarm's metric filter matches it. */
export const VERIFICATION_FAILED_MESSAGE = 'Export verification failed';

export interface VerifierDeps {
  s3: S3Client;
  getSql: () => Promise<Sql>;
  /** The export bucket and key prefix: the only objects this verifier may be asked about. */
  bucket: string;
  prefix: string;
  now?: () => Date;
  /** How an export run that asked for a restore hands it to restoreWorker (restore-after-export.ts). */
  restoreAfterExport?: Dispatch;
}

export interface VerifierOutcome {
  bucket: string;
  key: string;
  /** `gone`: the object (version) was deleted before it could be read; nothing to check. */
  status: 'verified' | 'failed' | 'gone';
  problems: string[];
  /** Where the outcome was recorded: the step of run `runId` for `schema`, or why not. */
  step?: { runId: string; schema: string; outcome: RecordOutcome } | { outcome: 'no-run-id' };
}

/**
 * Checks an uploaded export tarball against its manifest, tags the object `verified=true|false`,
 * and records the outcome on the export run's step for the schema (the run id and schema come
 * from the object's metadata). A failed check is logged as an error naming each problem, which
 * raises the alarm. Anything that stops the check itself (S3 or the database unreachable) is
 * thrown, so Lambda retries the event; a retry repeats the whole check, which changes nothing twice.
 */
export async function verifyUploadedTarball(object: CreatedObject, deps: VerifierDeps): Promise<VerifierOutcome> {
  const { bucket, key, versionId } = object;
  if (bucket !== deps.bucket || !key.startsWith(deps.prefix) || !key.endsWith('.tgz')) {
    throw new Error(`s3://${bucket}/${key} is not an export tarball (${deps.prefix}*.tgz in ${deps.bucket}): nothing to verify`);
  }
  let opened;
  try {
    opened = await openTarballObject(deps.s3, object);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    logger.warn('The tarball was gone before it could be verified', { bucket, key, versionId });
    return { bucket, key, status: 'gone', problems: [] };
  }

  const result = await verifyTarball(opened.body);
  const status = result.status === 'verified' ? 'verified' : 'failed';
  const verification: StepVerification = { status, checkedAt: (deps.now?.() ?? new Date()).toISOString(), problems: result.problems };

  // PutObjectTagging replaces the object's tag set; the export's upload sets none, and reading
  // the set first would need s3:GetObjectTagging for nothing.
  await deps.s3.send(
    new PutObjectTaggingCommand({
      Bucket: bucket,
      Key: key,
      VersionId: versionId,
      Tagging: { TagSet: [{ Key: VERIFIED_TAG, Value: String(status === 'verified') }] },
    }),
  );

  const runId = opened.metadata[RUN_ID_METADATA];
  const schema = opened.metadata[SCHEMA_METADATA] ?? result.schema ?? key.slice(deps.prefix.length, -'.tgz'.length);
  let step: VerifierOutcome['step'];
  if (runId) {
    const outcome = await recordVerificationOnStep(await deps.getSql(), { runId, schema }, verification);
    step = { runId, schema, outcome };
    // The last tarball of a run that asked for a restore to be checked starts it (if the run has ended).
    if (outcome === 'recorded') await startRestoreAfterExport(await deps.getSql(), runId, deps.restoreAfterExport);
    if (outcome === 'no-such-step') logger.warn('No export step to record the verification on', { bucket, key, runId, schema });
  } else {
    // Uploaded by hand, or by an export from before uploads carried their run: tagged only.
    step = { outcome: 'no-run-id' };
    logger.warn('The tarball carries no run id (x-amz-meta-run-id): verification not recorded on a step', { bucket, key });
  }

  const problems = result.problems.map((p) => p.message);
  const facts = { bucket, key, versionId, runId, schema, compressedBytes: result.compressedBytes, tables: result.tables.length };
  if (status === 'failed') logger.error(VERIFICATION_FAILED_MESSAGE, { ...facts, problems });
  else logger.info('Export tarball verified', facts);
  return { bucket, key, status, problems, step };
}
