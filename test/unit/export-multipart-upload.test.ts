import { crc32 } from 'node:zlib';
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { openMultipartUpload } from '../../lib/export/multipart-upload';
import { startDiscardingS3 } from '../support/discarding-s3';
import type { ReceivedRequest } from '../support/discarding-s3';

describe('openMultipartUpload', () => {
  it("with the SDK's default checksums (as in AWS), signs each part UNSIGNED-PAYLOAD and sends the part's CRC32 for S3 to check", async () => {
    const received: ReceivedRequest[] = [];
    const fakeS3 = await startDiscardingS3({ onRequest: (request) => received.push(request) });
    const { endpoint } = fakeS3;
    // Only the endpoint differs from the client used in AWS: checksum settings are the SDK's defaults.
    const s3 = new S3Client({ endpoint, forcePathStyle: true, region: 'eu-west-2', credentials: { accessKeyId: 'id', secretAccessKey: 'secret' } });
    try {
      const upload = await openMultipartUpload(s3, { bucket: 'b', key: 'k' });
      const bodies = [Buffer.alloc(5 * 1024 * 1024, 'a'), Buffer.from('the last part')];
      let stored = 0;
      for (const [k, body] of bodies.entries()) await upload.sendPart(k + 1, body, () => (stored += 1));
      await upload.complete();
      expect(stored).toBe(2);

      const parts = received.filter((request) => request.method === 'PUT');
      expect(parts).toHaveLength(2);
      for (const part of parts) {
        // Two parts are in flight at once: they may arrive in either order.
        const k = Number(new URL(part.url, endpoint).searchParams.get('partNumber')) - 1;
        expect(part.body.equals(bodies[k]!)).toBe(true);
        expect(part.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
        // The CRC32 of the body, big-endian, base64: what S3 compares the part with.
        const expected = Buffer.alloc(4);
        expected.writeUInt32BE(crc32(bodies[k]!));
        expect(part.headers['x-amz-checksum-crc32']).toBe(expected.toString('base64'));
        expect(part.headers['content-encoding']).toBeUndefined();
      }
      // The other calls still sign their (small) bodies.
      for (const request of received.filter((r) => r.method === 'POST')) expect(request.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      s3.destroy();
      await fakeS3.close();
    }
  });
});
