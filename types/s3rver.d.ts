// s3rver ships no types; this covers the part the tests and local scripts use.
declare module 's3rver' {
  import type { S3EventRecord } from 'aws-lambda';
  interface S3rverOptions {
    port?: number;
    address?: string;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    configureBuckets?: { name: string; configs?: Buffer[] }[];
  }
  export default class S3rver {
    constructor(options: S3rverOptions);
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
    /** S3 event notifications (S3's own "Records" shape), one per object created or deleted. */
    on(event: 'event', listener: (notification: { Records: S3EventRecord[] }) => void): this;
  }
}
