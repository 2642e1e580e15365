import { createReadStream } from 'node:fs';
import type { ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { TarArchive } from 'archiver';
import type { S3Client } from '@aws-sdk/client-s3';
import { failedStep } from './export-step-error';
import { uploadStreamToS3 } from './upload-stream-to-s3';
import type { UploadOptions, UploadTarget } from './upload-stream-to-s3';

/**
 * gzip level 3. Measured on 1.27 GB of licence-like CSV with Node's zlib: levels 1-3 all run at
 * ~185 MB/s and 3 is the smallest of them (286 MB); level 6 (gzip's default) takes 1.6x as long
 * for 9% less (261 MB). The export has to fit in one Lambda invocation and its tarballs are
 * transient, so time matters more than a few percent of S3 space.
 */
export const GZIP_LEVEL = 3;

/** One `.tgz` written straight into a multipart upload: tar, then gzip, then S3 parts. */
export interface SchemaTarball {
  /** Resolves once S3 has accepted the upload, so a missing bucket fails before any COPY runs. */
  readonly started: Promise<void>;
  /**
   * Queues a finished file as an entry; resolves once the archive has read all of it (the file
   * may then be deleted). Its size is known, so archiver streams it instead of buffering it whole.
   */
  addFile(path: string, name: string): Promise<void>;
  addBuffer(content: Buffer, name: string): void;
  /** Ends the archive and waits for the upload to complete; resolves with the compressed size. */
  finish(): Promise<{ compressedBytes: number }>;
  /** Stops everything and aborts the upload; nothing appears at the key. Never rejects. */
  cancel(reason: Error): Promise<void>;
}

export function startSchemaTarball(
  s3: S3Client,
  target: UploadTarget,
  { date = new Date(), upload: uploadOptions }: { date?: Date; upload?: UploadOptions } = {},
): SchemaTarball {
  const archive = new TarArchive();
  // 256 KiB output chunks: fewer, larger writes into the S3 parts than zlib's 16 KiB default.
  const gzip = createGzip({ level: GZIP_LEVEL, chunkSize: 256 * 1024 });
  let finalized = false;
  let compressedBytes = 0;
  const filesBeingRead = new Set<ReadStream>();

  // Wired by hand rather than with pipeline(): pipeline destroys the archive on any failure, and
  // destroying archiver 8 while an entry is being written re-emits the error on tar-stream's
  // entry, which has no listener: an uncaught exception. Failures are instead sent downstream
  // (gzip is destroyed, so the upload aborts) and the archive is left to be collected.
  archive.on('error', (error) => gzip.destroy(error));
  gzip.on('error', () => {}); // seen by the upload, which reads gzip
  archive.pipe(gzip);

  async function* countedUntilFinalized(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      compressedBytes += chunk.length;
      yield chunk;
    }
    // An archive that ends without finalize() is truncated: refuse it, so the upload is aborted.
    if (!finalized) throw new Error('The archive ended before it was finalised');
  }

  let markStarted!: () => void;
  const created = new Promise<void>((resolve) => (markStarted = resolve));
  const uploadTo = `Uploading to s3://${target.bucket}/${target.key}`;
  const done = uploadStreamToS3(s3, { contentType: 'application/gzip', ...target }, countedUntilFinalized(gzip), {
    ...uploadOptions,
    onCreated: markStarted,
  }).catch((error: unknown) => {
    throw failedStep(uploadTo, error);
  });
  const started = Promise.race([created, done]).then(() => undefined);
  // Both are awaited by the caller at some point; these only stop an early failure being "unhandled".
  done.catch(() => {});
  started.catch(() => {});

  return {
    started,
    async addFile(path, name) {
      const stats = await stat(path);
      // 1 MiB reads: archiver's default .file() reads 64 KiB at a time and packs ~25% slower.
      const file = createReadStream(path, { highWaterMark: 1024 * 1024 });
      filesBeingRead.add(file);
      // archiver pipes the file in without forwarding its errors, so they are watched here.
      const read = finished(file).finally(() => filesBeingRead.delete(file));
      archive.append(file, { name, stats, date, mode: 0o644 });
      await Promise.race([read, done.then(() => Promise.reject(new Error(`${uploadTo}: ended before ${name} was added`)))]);
    },
    addBuffer(content, name) {
      archive.append(content, { name, date, mode: 0o644 });
    },
    async finish() {
      finalized = true;
      // Not awaited: if the upload fails, archiver's own promise may never settle; `done` does.
      archive.finalize().catch(() => {});
      await done;
      return { compressedBytes };
    },
    async cancel(reason) {
      // Not archive.destroy() or abort(): both end in uncaught exceptions inside archiver 8.
      gzip.destroy(reason);
      for (const file of filesBeingRead) file.destroy();
      await done.catch(() => {});
    },
  };
}
