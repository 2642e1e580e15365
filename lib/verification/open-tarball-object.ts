import type { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';

export interface TarballObject {
  body: Readable;
  /** The object's user metadata (x-amz-meta-*), keys in lower case. */
  metadata: Record<string, string>;
  versionId?: string;
  /** The ETag of what was sent. */
  etag?: string;
}

export interface ObjectAddress {
  bucket: string;
  key: string;
  /** The version the event was about: a later upload to the same key must not be verified in its place. */
  versionId?: string;
}

/** S3 error names for an object (or version) that is not there. */
const NOT_FOUND = new Set(['NoSuchKey', 'NoSuchVersion', 'NotFound', 'NoSuchBucket']);

export function isNotFound(error: unknown): boolean {
  return NOT_FOUND.has((error as { name?: string }).name ?? '') || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404;
}

/** Opens an object as a stream (one GET: the body and the metadata together). */
export async function openTarballObject(s3: S3Client, { bucket, key, versionId }: ObjectAddress): Promise<TarballObject> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  if (!object.Body) throw new Error(`s3://${bucket}/${key} has no body`);
  return { body: object.Body as Readable, metadata: object.Metadata ?? {}, versionId: object.VersionId, etag: object.ETag };
}
