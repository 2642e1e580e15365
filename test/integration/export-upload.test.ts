import { randomBytes } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createS3Client } from '../../lib/clients/s3';
import { logger } from '../../lib/logger';
import { openMultipartUpload } from '../../lib/export/multipart-upload';
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

/** `data` cut into parts of `partBytes` (the last shorter), numbered from 1. */
function partsOf(data: Buffer, partBytes: number): { number: number; body: Buffer }[] {
  const parts = [];
  for (let offset = 0; offset < data.length; offset += partBytes) parts.push({ number: parts.length + 1, body: data.subarray(offset, offset + partBytes) });
  return parts;
}

// The upload the export's tarball goes through (schema-tarball.ts): parts sent as they fill, the
// part that carries a table's header sent last of its table, S3 joining them by number.
describe('openMultipartUpload', () => {
  it('joins parts by number whatever order they were sent in, never more than two in flight', async () => {
    const data = randomBytes(23 * MiB);
    const parts = partsOf(data, 5 * MiB);
    const watched = watchedClient();
    try {
      const upload = await openMultipartUpload(watched.client, { bucket, key: 'large' });
      let stored = 0;
      // Part 1 held back to the end, as a table's first part waits for its header.
      for (const part of [...parts.slice(1), parts[0]!]) await upload.sendPart(part.number, part.body, () => (stored += 1));
      const summary = await upload.complete();
      expect(summary).toEqual({ bytes: data.length, parts: 5 });
      expect(stored).toBe(5);
      expect(watched.parts).toEqual([2, 3, 4, 5, 1]);
      expect(watched.maxInFlight()).toBe(2);
      expect((await downloadObject(s3.client, bucket, 'large')).equals(data)).toBe(true);
    } finally {
      watched.client.destroy();
    }
  });

  it('a short object is one short part', async () => {
    const data = Buffer.from('a small tarball');
    const upload = await openMultipartUpload(s3.client, { bucket, key: 'small' });
    await upload.sendPart(1, data);
    expect(await upload.complete()).toEqual({ bytes: data.length, parts: 1 });
    expect(await downloadObject(s3.client, bucket, 'small')).toEqual(data);
  });

  it('an abort keeps the object that was there', async () => {
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'kept', Body: 'previous' }));
    const upload = await openMultipartUpload(s3.client, { bucket, key: 'kept' });
    await upload.sendPart(1, randomBytes(5 * MiB));
    await upload.abort();
    expect((await downloadObject(s3.client, bucket, 'kept')).toString()).toBe('previous');
    await expect(upload.sendPart(2, randomBytes(10))).rejects.toThrow(/already ended/);
  });

  it('a part S3 rejects is thrown to the producer as that error, and after the abort no object appears', async () => {
    const watched = watchedClient(2);
    try {
      const upload = await openMultipartUpload(watched.client, { bucket, key: 'rejected' });
      const sending = (async () => {
        for (const part of partsOf(randomBytes(16 * MiB), 5 * MiB)) await upload.sendPart(part.number, part.body);
        return upload.complete();
      })();
      await expect(sending).rejects.toThrow('S3 rejected part 2');
      await upload.abort();
      expect(await objectExists(s3.client, bucket, 'rejected')).toBe(false);
    } finally {
      watched.client.destroy();
    }
  });
});
