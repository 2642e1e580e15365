import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../lib/clients/s3';
import { startSchemaTarball } from '../../lib/export/schema-tarball';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';
import { downloadObject, unpackTarball } from '../fixtures/export/tarball';

const MiB = 1024 * 1024;
const PART_BYTES = 5 * MiB;

let s3: TestS3;
let bucket: string;

beforeAll(async () => {
  s3 = await startTestS3();
  bucket = await s3.createBucket();
});

afterAll(async () => {
  await s3?.close();
});

interface SentPart {
  partNumber: number;
  memory: ArrayBufferLike;
  payloadHeader: string | undefined;
}

/**
 * A client of its own that records each UploadPart (its number, the memory of its body, the
 * payload hash it was signed with) and holds every even-numbered part 200 ms before it is sent,
 * so that parts are stored out of order: a buffer reused before S3 has stored its own part would
 * be overwritten by then, and the tarball would not read back.
 */
function recordingClient(): { client: S3Client; sent: SentPart[] } {
  const client = createS3Client({ endpoint: s3.endpoint });
  const sent: SentPart[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand') {
        const { PartNumber, Body } = args.input as { PartNumber: number; Body: Buffer };
        const { headers } = args.request as { headers: Record<string, string> };
        sent.push({ partNumber: PartNumber, memory: Body.buffer, payloadHeader: headers['x-amz-content-sha256'] });
        if (PartNumber % 2 === 0) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return next(args);
    },
    { step: 'finalizeRequest', name: 'recordUploadParts', priority: 'low' },
  );
  return { client, sent };
}

/** Gzip members of `data` in blocks of `block` bytes, cut into pieces of irregular sizes, as zlib hands them over. */
function membersInPieces(data: Buffer, block: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += block) {
    const member = gzipSync(data.subarray(offset, offset + block), { level: 1 });
    for (let at = 0, k = 0; at < member.length; k += 1) {
      const size = [1, 70_000, 300_001, 13][k % 4]!;
      pieces.push(member.subarray(at, at + size));
      at += size;
    }
  }
  return pieces;
}

describe('startSchemaTarball', () => {
  it('writes entries larger than several parts, smaller than one, and after a part boundary byte for byte; parts are sent unsigned-payload from reused buffers', async () => {
    const { client, sent } = recordingClient();
    // Random bytes do not compress: the sizes in parts are about the sizes here. The large entry
    // fills parts 2 to 6 itself (its first 5 MiB wait for part 1): part 3 is sent while part 2 is
    // in flight, so sending it waits until one of them is stored and its buffer given back, and
    // that buffer then takes part 5's bytes, whatever the order the parts are stored in.
    const contents: [string, Buffer][] = [
      ['s/large.csv', randomBytes(32 * MiB + 5)],
      ['s/tiny.csv', Buffer.from('id\n1\n')],
      ['s/empty.csv', Buffer.alloc(0)],
      ['s/crossing.csv', randomBytes(6 * MiB + 512)],
    ];
    const tarball = await startSchemaTarball(client, { bucket, key: 'pieces.tgz' }, { partBytes: PART_BYTES });
    for (const [name, data] of contents) {
      const entry = tarball.startEntry(name);
      for (const piece of membersInPieces(data, MiB)) await entry.write(piece);
      await entry.end(data.length);
    }
    await tarball.addBuffer(Buffer.from('{"manifest":true}\n'), 's/manifest.json');
    const { compressedBytes } = await tarball.finish();

    const tgz = await downloadObject(client, bucket, 'pieces.tgz');
    expect(tgz.length).toBe(compressedBytes);
    const { folder, entries } = await unpackTarball(tgz);
    try {
      expect(entries).toEqual([...contents.map(([name]) => name), 's/manifest.json']);
      for (const [name, data] of contents) expect((await readFile(join(folder, name))).equals(data)).toBe(true);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }

    expect(sent.length).toBeGreaterThanOrEqual(6);
    expect(sent.map((part) => part.partNumber).sort((a, b) => a - b)).toEqual(sent.map((_, k) => k + 1));
    expect(sent.every((part) => part.payloadHeader === 'UNSIGNED-PAYLOAD')).toBe(true);
    // A part's buffer goes back to the pool once S3 has stored it, and carries a later part.
    expect(new Set(sent.map((part) => part.memory)).size).toBeLessThan(sent.length);
    client.destroy();
  });
});
