import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../lib/clients/s3';

export interface TestS3 {
  endpoint: string;
  /** The server itself, for its S3 event notifications ('event'). */
  server: S3rver;
  client: S3Client;
  /** Creates a bucket with a fresh name and returns the name. */
  createBucket(): Promise<string>;
  close(): Promise<void>;
}

let bucketCounter = 0;

/** A real S3-protocol server (s3rver) on a free loopback port, with its files in a temporary folder. */
export async function startTestS3(): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), 'waj-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = createS3Client({ endpoint });
  return {
    endpoint,
    server,
    client,
    async createBucket() {
      bucketCounter += 1;
      const bucket = `test-bucket-${process.pid}-${bucketCounter}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    async close() {
      client.destroy();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
