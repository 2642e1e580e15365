import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart, S3Client, UploadPartCommandInput, UploadPartCommandOutput } from '@aws-sdk/client-s3';
import type { BuildMiddleware } from '@smithy/types';
import { logger } from '../logger';

export interface UploadTarget {
  bucket: string;
  key: string;
  contentType?: string;
  /** User metadata stored with the object (x-amz-meta-*). */
  metadata?: Record<string, string>;
}

export interface UploadSummary {
  bytes: number;
  parts: number;
}

/** S3's limits: 10,000 parts per upload, each at least 5 MiB except the last. */
export const MAX_PARTS = 10_000;
export const MIN_PART_BYTES = 5 * 1024 * 1024;

/**
 * Signs a part without hashing its body (`x-amz-content-sha256: UNSIGNED-PAYLOAD`, which S3
 * accepts): SigV4 otherwise takes the SHA-256 of every part to sign it, 4% of the export's CPU
 * in a profile, for an integrity check that is done anyway: in AWS the endpoint is HTTPS and the
 * SDK adds each part's CRC32 (its default, requestChecksumCalculation WHEN_SUPPORTED), which S3
 * checks; botocore (the AWS CLI) also skips the body's hash for an S3 request over HTTPS that
 * carries a checksum header (S3SigV4Auth._should_sha256_sign_payload). Locally the S3 server
 * is on loopback, and the export's verifier reads every tarball back.
 */
const unsignedPayload: BuildMiddleware<UploadPartCommandInput, UploadPartCommandOutput> = (next) => (args) => {
  // At the build step the request is the SDK's HttpRequest (an object with headers), not yet signed.
  const { headers } = args.request as { headers: Record<string, string> };
  headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  return next(args);
};

/** One multipart upload whose parts may be sent in any order; S3 joins them by part number. */
export interface MultipartUpload {
  /**
   * Sends one part. Resolves once it is on its way and fewer than `maxPartsInFlight` are; throws
   * the failure of any earlier part, so a producer stops at the first one. `onStored` hears
   * that S3 has stored the part: `body` may then be reused (after a failure it never is).
   */
  sendPart(partNumber: number, body: Buffer, onStored?: () => void): Promise<void>;
  /** Waits for the parts on their way; throws the failure of any. Nothing appears at the key. */
  partsSent(): Promise<void>;
  /** Waits for every part, then makes the object appear. */
  complete(): Promise<UploadSummary>;
  /** Discards every part; the object at the key (if any) stays as it was. Never rejects. */
  abort(): Promise<void>;
}

/**
 * Starts a multipart upload. Nothing appears at the key until complete(); an abort that itself
 * fails is logged and never replaces the original error (s3rver, for one, answers it with 405);
 * the parts it leaves behind are invisible and a bucket lifecycle rule can expire them.
 */
export async function openMultipartUpload(s3: S3Client, target: UploadTarget, { maxPartsInFlight = 2 } = {}): Promise<MultipartUpload> {
  const { bucket: Bucket, key: Key } = target;
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: target.contentType, Metadata: target.metadata }));
  const UploadId = created.UploadId;
  if (!UploadId) throw new Error('S3 did not return an UploadId for the multipart upload');

  const completed: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let bytes = 0;
  let ended = false;
  const throwIfFailed = (): void => {
    if (failure) throw failure.error;
  };
  const partsSent = async (): Promise<void> => {
    await Promise.all(inFlight);
    throwIfFailed();
  };

  return {
    async sendPart(PartNumber, Body, onStored) {
      throwIfFailed();
      if (ended) throw new Error('The multipart upload has already ended');
      if (!Number.isInteger(PartNumber) || PartNumber < 1 || PartNumber > MAX_PARTS) {
        throw new Error(`The object needs more than ${MAX_PARTS} parts (part number ${PartNumber})`);
      }
      bytes += Body.length;
      // Never rejects: a failure is recorded and rethrown to the producer, so none goes unhandled.
      const command = new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body, ContentLength: Body.length });
      command.middlewareStack.add(unsignedPayload, { step: 'build', name: 'unsignedPayload' });
      const sending: Promise<void> = s3
        .send(command)
        .then(
          ({ ETag }) => {
            completed.push({ PartNumber, ETag });
            onStored?.();
          },
          (error: unknown) => {
            failure ??= { error };
          },
        )
        .finally(() => inFlight.delete(sending));
      inFlight.add(sending);
      while (inFlight.size >= maxPartsInFlight) await Promise.race(inFlight);
      throwIfFailed();
    },
    partsSent,
    async complete() {
      ended = true;
      await partsSent();
      completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: completed } }));
      return { bytes, parts: completed.length };
    },
    async abort() {
      ended = true;
      // Parts still being sent would otherwise land after the abort.
      await Promise.allSettled(inFlight);
      try {
        await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
      } catch (abortError) {
        logger.warn('Could not abort the multipart upload', { bucket: Bucket, key: Key, uploadId: UploadId, error: abortError as Error });
      }
    },
  };
}
