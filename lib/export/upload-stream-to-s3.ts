import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import { logger } from '../logger';
import { splitIntoParts } from './split-into-parts';

export interface UploadTarget {
  bucket: string;
  key: string;
  /** User metadata of the object (x-amz-meta-*), e.g. the run that wrote it. */
  metadata?: Record<string, string>;
  contentType?: string;
}

export interface UploadOptions {
  /** 8 MiB: above S3's 5 MiB minimum, and with two in flight the upload holds ~24 MiB at most. */
  partBytes?: number;
  maxPartsInFlight?: number;
  /** Hears that S3 accepted the upload (bucket exists, credentials work) before any data is sent. */
  onCreated?: () => void;
}

export interface UploadSummary {
  bytes: number;
  parts: number;
}

const MAX_PARTS = 10_000; // S3's limit per multipart upload

/**
 * Streams `source` to S3 as a multipart upload, never holding more than the parts in flight.
 *
 * The object appears only at CompleteMultipartUpload, after every byte has been sent; on any
 * failure (of the source or of S3) the upload is aborted, so nothing partial appears and an
 * object already at the key is left as it was. An abort that itself fails is logged and never
 * replaces the original error (s3rver, for one, answers it with 405); the parts it leaves
 * behind are invisible and a bucket lifecycle rule can expire them.
 */
export async function uploadStreamToS3(
  s3: S3Client,
  target: UploadTarget,
  source: AsyncIterable<Uint8Array>,
  { partBytes = 8 * 1024 * 1024, maxPartsInFlight = 2, onCreated }: UploadOptions = {},
): Promise<UploadSummary> {
  const { bucket: Bucket, key: Key } = target;
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: target.contentType, Metadata: target.metadata }));
  const UploadId = created.UploadId;
  if (!UploadId) throw new Error('S3 did not return an UploadId for the multipart upload');
  onCreated?.();

  const completed: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let bytes = 0;
  let parts = 0;

  const sendPart = (Body: Buffer): void => {
    parts += 1;
    if (parts > MAX_PARTS) throw new Error(`The object needs more than ${MAX_PARTS} parts of ${partBytes} bytes`);
    const PartNumber = parts;
    bytes += Body.length;
    // Never rejects: a failure is recorded and rethrown by the loop, so no rejection goes unhandled.
    const sending: Promise<void> = s3
      .send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body, ContentLength: Body.length }))
      .then(
        ({ ETag }) => {
          completed.push({ PartNumber, ETag });
        },
        (error: unknown) => {
          failure ??= { error };
        },
      )
      .finally(() => inFlight.delete(sending));
    inFlight.add(sending);
  };
  const throwIfFailed = (): void => {
    if (failure) throw failure.error;
  };

  try {
    for await (const part of splitIntoParts(source, partBytes)) {
      throwIfFailed();
      sendPart(part);
      while (inFlight.size >= maxPartsInFlight) await Promise.race(inFlight);
      throwIfFailed();
    }
    // CompleteMultipartUpload needs at least one part; an empty part is allowed as the last.
    if (parts === 0) sendPart(Buffer.alloc(0));
    await Promise.all(inFlight);
    throwIfFailed();
    completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: completed } }));
    return { bytes, parts };
  } catch (error) {
    // Parts still being sent would otherwise land after the abort.
    await Promise.allSettled(inFlight);
    try {
      await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
    } catch (abortError) {
      logger.warn('Could not abort the multipart upload', { bucket: Bucket, key: Key, uploadId: UploadId, error: abortError as Error });
    }
    throw error;
  }
}
