import { S3Client } from '@aws-sdk/client-s3';

export interface S3Options {
  /** A local S3-protocol server (s3rver) for tests and local runs; unset in AWS. */
  endpoint?: string;
}

/** Credentials s3rver accepts; used only when an endpoint is given and no AWS credentials are set. */
const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export function createS3Client({ endpoint }: S3Options = {}): S3Client {
  if (!endpoint) return new S3Client({});
  return new S3Client({
    endpoint,
    forcePathStyle: true,
    region: process.env.AWS_REGION ?? 'eu-west-2',
    credentials: LOCAL_S3_CREDENTIALS,
    // s3rver predates the SDK's default CRC checksums and aws-chunked bodies.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
