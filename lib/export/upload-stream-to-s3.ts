import type { S3Client } from '@aws-sdk/client-s3';
import { openMultipartUpload } from './multipart-upload';
import type { UploadSummary, UploadTarget } from './multipart-upload';
import { splitIntoParts } from './split-into-parts';

export type { UploadSummary, UploadTarget } from './multipart-upload';

export interface UploadOptions {
  /** 8 MiB: above S3's 5 MiB minimum, and with two in flight the upload holds ~24 MiB at most. */
  partBytes?: number;
  maxPartsInFlight?: number;
  /** Hears that S3 accepted the upload (bucket exists, credentials work) before any data is sent. */
  onCreated?: () => void;
}

/**
 * Streams `source` to S3 as a multipart upload, never holding more than the parts in flight.
 *
 * The object appears only at CompleteMultipartUpload, after every byte has been sent; on any
 * failure (of the source or of S3) the upload is aborted, so nothing partial appears and an
 * object already at the key is left as it was.
 */
export async function uploadStreamToS3(
  s3: S3Client,
  target: UploadTarget,
  source: AsyncIterable<Uint8Array>,
  { partBytes = 8 * 1024 * 1024, maxPartsInFlight = 2, onCreated }: UploadOptions = {},
): Promise<UploadSummary> {
  const upload = await openMultipartUpload(s3, target, { maxPartsInFlight });
  onCreated?.();
  let parts = 0;
  try {
    for await (const part of splitIntoParts(source, partBytes)) {
      parts += 1;
      await upload.sendPart(parts, part);
    }
    // CompleteMultipartUpload needs at least one part; an empty part is allowed as the last.
    if (parts === 0) await upload.sendPart(1, Buffer.alloc(0));
    return await upload.complete();
  } catch (error) {
    await upload.abort();
    throw error;
  }
}
