import { randomBytes } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createS3Client } from '../../lib/clients/s3';
import { logger } from '../../lib/logger';
import { uploadStreamToS3 } from '../../lib/export/upload-stream-to-s3';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';
import { downloadObject, objectExists } from '../fixtures/export/tarball';

const MiB = 1024 * 1024;

let s3: TestS3;
let bucket: string;

beforeAll(async () => {
  s3 = await startTestS3();
  bucket = await s3.createBucket();
  vi.spyOn(logger, 'warn').mockImplementation(() => {}); // s3rver answers AbortMultipartUpload with 405
});

afterAll(async () => {
  vi.restoreAllMocks();
  await s3?.close();
});

async function* chunksOf(data: Buffer, size: number, failAfter?: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) {
    if (failAfter !== undefined && offset >= failAfter) throw new Error('the source broke');
    yield data.subarray(offset, offset + size);
  }
}

/** A client of its own that watches (and can sabotage) UploadPart calls. */
function watchedClient(failPart?: number): { client: S3Client; maxInFlight: () => number; parts: number[] } {
  const client = createS3Client({ endpoint: s3.endpoint });
  let inFlight = 0;
  let most = 0;
  const parts: number[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'UploadPartCommand') return next(args);
      const partNumber = (args.input as { PartNumber: number }).PartNumber;
      parts.push(partNumber);
      inFlight += 1;
      most = Math.max(most, inFlight);
      try {
        if (partNumber === failPart) throw new Error(`S3 rejected part ${partNumber}`);
        return await next(args);
      } finally {
        inFlight -= 1;
      }
    },
    { step: 'initialize', name: 'watchUploadParts' },
  );
  return { client, maxInFlight: () => most, parts };
}

describe('uploadStreamToS3', () => {
  it('uploads a small object as one short part', async () => {
    const data = Buffer.from('a small tarball');
    const summary = await uploadStreamToS3(s3.client, { bucket, key: 'small' }, chunksOf(data, 4));
    expect(summary).toEqual({ bytes: data.length, parts: 1 });
    expect(await downloadObject(s3.client, bucket, 'small')).toEqual(data);
  });

  it('uploads an empty stream as an empty object', async () => {
    const summary = await uploadStreamToS3(s3.client, { bucket, key: 'empty' }, chunksOf(Buffer.alloc(0), 1));
    expect(summary).toEqual({ bytes: 0, parts: 1 });
    expect((await downloadObject(s3.client, bucket, 'empty')).length).toBe(0);
  });

  it('splits a larger stream into parts in order, never more than two in flight', async () => {
    const data = randomBytes(23 * MiB);
    const watched = watchedClient();
    try {
      const summary = await uploadStreamToS3(watched.client, { bucket, key: 'large' }, chunksOf(data, 300_000), { partBytes: 5 * MiB });
      expect(summary).toEqual({ bytes: data.length, parts: 5 });
      expect(watched.parts.sort()).toEqual([1, 2, 3, 4, 5]);
      expect(watched.maxInFlight()).toBe(2);
      expect((await downloadObject(s3.client, bucket, 'large')).equals(data)).toBe(true);
    } finally {
      watched.client.destroy();
    }
  });

  it('aborts when the source fails part way, keeping the object that was there', async () => {
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'kept', Body: 'previous' }));
    const upload = uploadStreamToS3(s3.client, { bucket, key: 'kept' }, chunksOf(randomBytes(12 * MiB), MiB, 11 * MiB), {
      partBytes: 5 * MiB,
    });
    await expect(upload).rejects.toThrow('the source broke');
    expect((await downloadObject(s3.client, bucket, 'kept')).toString()).toBe('previous');
  });

  it('aborts when S3 rejects a part, and reports that error rather than the abort', async () => {
    const watched = watchedClient(2);
    try {
      const upload = uploadStreamToS3(watched.client, { bucket, key: 'rejected' }, chunksOf(randomBytes(16 * MiB), MiB), {
        partBytes: 5 * MiB,
      });
      await expect(upload).rejects.toThrow('S3 rejected part 2');
      expect(await objectExists(s3.client, bucket, 'rejected')).toBe(false);
    } finally {
      watched.client.destroy();
    }
  });
});
