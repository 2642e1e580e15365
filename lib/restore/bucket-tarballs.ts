import { GetObjectTaggingCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { VERIFIED_TAG } from '../verification/verify-uploaded-tarball';
import { isNotFound, openTarballObject } from '../verification/open-tarball-object';
import type { RestoreSource } from './list-restore-sources';
import { RestoreCannotRunError, RestoreRefusedError } from './restore-errors';

/** A schema's tarball in the export bucket as a restore run found it, and fixed it for its step. */
export interface BucketTarball {
  schema: string;
  key: string;
  /** The object's ETag when the run started: a step refuses an object that has changed since. */
  etag: string;
  /** The export run that wrote it (the object's `run-id` metadata), if it says. */
  exportRunId: string | null;
  /** Compressed bytes. */
  size: number;
  /** The tarball verifier's tag: true, false, or null while unchecked. */
  verified: boolean | null;
}

/**
 * The tarball of each schema at `<prefix><schema>.tgz`: its ETag, size, the export run that wrote
 * it and the verifier's tag, by HEAD and GetObjectTagging. Refuses a missing one, and one the
 * verifier tagged `verified=false` (naming the key); RestoreCannotRunError when S3 cannot be read.
 */
export async function findBucketTarballs(s3: S3Client, { bucket, prefix }: { bucket: string; prefix: string }, schemas: readonly string[]): Promise<BucketTarball[]> {
  return Promise.all(
    schemas.map(async (schema) => {
      const key = `${prefix}${schema}.tgz`;
      let head;
      try {
        head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      } catch (error) {
        if (isNotFound(error)) throw new RestoreRefusedError(`No tarball of schema ${schema} at s3://${bucket}/${key}: export it first`);
        throw new RestoreCannotRunError(`s3://${bucket}/${key} cannot be read: ${(error as Error).message}`);
      }
      const tarball: BucketTarball = {
        schema,
        key,
        etag: head.ETag ?? '',
        exportRunId: head.Metadata?.['run-id'] ?? null,
        size: head.ContentLength ?? 0,
        verified: await readVerifiedTag(s3, bucket, key, head.VersionId),
      };
      refuseUnverified(bucket, tarball);
      return tarball;
    }),
  );
}

function refuseUnverified(bucket: string, tarball: Pick<BucketTarball, 'key' | 'verified'>): void {
  if (tarball.verified === false) {
    throw new RestoreRefusedError(
      `s3://${bucket}/${tarball.key} is tagged ${VERIFIED_TAG}=false: the tarball verifier found it does not match its manifest (its step's verification in the export run says how). Export the schema again`,
    );
  }
}

/**
 * A tarball as its restore step reads it: the object whose ETag the run fixed, or a refusal naming
 * the change (the key was written again after the run started, or tagged verified=false since).
 */
export function pinnedTarballSource(s3: S3Client, bucket: string, { key, etag }: Pick<BucketTarball, 'key' | 'etag'>): RestoreSource {
  const label = `s3://${bucket}/${key}`;
  return {
    label,
    async open() {
      let object;
      try {
        object = await openTarballObject(s3, { bucket, key });
      } catch (error) {
        if (isNotFound(error)) throw new RestoreRefusedError(`${label} is gone: it was deleted after the restore run started`);
        throw new RestoreCannotRunError(`${label} cannot be read: ${(error as Error).message}`);
      }
      // S3 (and s3rver) send the ETag of what they send; If-Match would do the same on S3 alone.
      if (object.etag !== etag) {
        object.body.destroy();
        throw new RestoreRefusedError(`${label} was written again after the restore run started (its ETag was ${etag}, now ${object.etag}): start a new restore run`);
      }
      return object.body;
    },
  };
}

/** Refuses the tarball if the verifier has tagged it verified=false since the run found it. */
export async function refuseIfTaggedUnverified(s3: S3Client, bucket: string, key: string): Promise<void> {
  refuseUnverified(bucket, { key, verified: await readVerifiedTag(s3, bucket, key) });
}

/** The verifier's tag on the object: true, false, or null while it has not checked it. */
async function readVerifiedTag(s3: S3Client, bucket: string, key: string, versionId?: string): Promise<boolean | null> {
  const tagging = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key, VersionId: versionId })).catch((error: unknown) => {
    throw new RestoreCannotRunError(`The tags of s3://${bucket}/${key} cannot be read: ${(error as Error).message}`);
  });
  const tag = tagging.TagSet?.find((t) => t.Key === VERIFIED_TAG)?.Value;
  return tag === undefined ? null : tag === 'true';
}
