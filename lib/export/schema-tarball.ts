import type { S3Client } from '@aws-sdk/client-s3';
import { failedStep } from './export-step-error';
import { BlockPool } from './block-pool';
import { gzipMember } from './gzip-in-blocks';
import { openMultipartUpload } from './multipart-upload';
import type { MultipartUpload, UploadTarget } from './multipart-upload';
import { tarEnd, tarHeader, tarPadding } from './tar-header';

/** 8 MiB: above S3's 5 MiB minimum; with two in flight the upload holds ~24 MiB at most. */
export const PART_BYTES = 8 * 1024 * 1024;

/** An entry whose already-compressed data is being written; its size is given at the end. */
export interface TarballEntry {
  /** Appends gzip member(s) of the entry's data. */
  write(compressed: Buffer): Promise<void>;
  /** Ends the entry: `size` is the uncompressed size of everything written. */
  end(size: number): Promise<void>;
}

/**
 * One `.tgz` written straight into a multipart upload, as gzip members back to back (RFC 1952:
 * every gzip reader reads them as one stream): for each table a member holding its tar header,
 * then the table's own members, then a member holding the tar padding; the manifest and the
 * end-of-archive blocks last. Entries are written one after the other, in the caller's order.
 */
export interface SchemaTarball {
  /**
   * Starts the next entry. Its data goes to S3 as it comes, without being staged: a tar header
   * must precede the data but holds its size, known only at the end, so the first 8 MiB of
   * data are held back and the part that carries them (with the header in front) gets a part
   * number reserved before the parts that follow it; S3 joins parts by number, not arrival.
   */
  startEntry(name: string): TarballEntry;
  addBuffer(content: Buffer, name: string): Promise<void>;
  /**
   * Ends the archive and completes the upload; resolves with the compressed size. `beforeComplete`
   * runs once every part is stored, just before the object appears at the key: whatever it throws
   * is thrown as it is, and nothing appears (the caller cancels the tarball as on any failure).
   */
  finish(beforeComplete?: () => Promise<void>): Promise<{ compressedBytes: number }>;
  /** Aborts the upload; nothing appears at the key and the object there stays. Never rejects. */
  cancel(): Promise<void>;
}

/** Resolves once S3 has accepted the upload, so a missing bucket fails before any COPY runs. */
export async function startSchemaTarball(
  s3: S3Client,
  target: UploadTarget,
  { date = new Date(), partBytes = PART_BYTES }: { date?: Date; partBytes?: number } = {},
): Promise<SchemaTarball> {
  const uploadTo = `Uploading to s3://${target.bucket}/${target.key}`;
  let upload: MultipartUpload;
  try {
    upload = await openMultipartUpload(s3, { contentType: 'application/gzip', ...target });
  } catch (error) {
    throw failedStep(uploadTo, error);
  }
  let nextPart = 1;
  let compressedBytes = 0;
  // The object's bytes not yet sent, in order, gathered into a part buffer of the pool; always
  // fewer than partBytes between calls. A part's buffer comes back once S3 has stored the part.
  const parts = new BlockPool(partBytes, 4);
  let pending = parts.take();
  let pendingBytes = 0;
  let entryOpen = false;

  const send = async (partNumber: number, body: Buffer): Promise<void> => {
    try {
      await upload.sendPart(partNumber, body, () => parts.give(body));
    } catch (error) {
      throw failedStep(uploadTo, error);
    }
  };

  /** Queues bytes at the end of the object, sending each full part. */
  const append = async (data: Buffer): Promise<void> => {
    compressedBytes += data.length;
    for (let from = 0; from < data.length; ) {
      const copied = data.copy(pending, pendingBytes, from, from + Math.min(partBytes - pendingBytes, data.length - from));
      pendingBytes += copied;
      from += copied;
      if (pendingBytes === partBytes) await send(nextPart++, takePending());
    }
  };

  /** The queued bytes (a view of a pool buffer; give it back when done), leaving none queued. */
  const takePending = (): Buffer => {
    const taken = pending.subarray(0, pendingBytes);
    pending = parts.take();
    pendingBytes = 0;
    return taken;
  };

  const entryHeader = (name: string, size: number): Promise<Buffer> => gzipMember(tarHeader({ name, size, mtime: date }));

  return {
    startEntry(name) {
      if (entryOpen) throw new Error(`Cannot start ${name}: another entry is still being written`);
      entryOpen = true;
      const held: Buffer[] = [];
      let heldBytes = 0;
      let reserved: { part: number; before: Buffer } | undefined;
      return {
        async write(compressed) {
          if (reserved) return append(compressed);
          held.push(compressed);
          heldBytes += compressed.length;
          compressedBytes += compressed.length;
          if (heldBytes >= partBytes) {
            // From here on the entry's data follows the reserved part; what was pending precedes it.
            reserved = { part: nextPart++, before: takePending() };
          }
        },
        async end(size) {
          const header = await entryHeader(name, size);
          if (reserved) {
            // The data after the reservation was counted by append; held data was counted on write.
            compressedBytes += header.length;
            const body = Buffer.concat([reserved.before, header, ...held]);
            parts.give(reserved.before);
            await send(reserved.part, body);
          } else {
            compressedBytes -= heldBytes; // counted again by append
            await append(header);
            for (const chunk of held) await append(chunk);
          }
          const padding = tarPadding(size);
          if (padding.length > 0) await append(await gzipMember(padding));
          entryOpen = false;
        },
      };
    },
    async addBuffer(content, name) {
      if (entryOpen) throw new Error(`Cannot add ${name}: another entry is still being written`);
      await append(await gzipMember(Buffer.concat([tarHeader({ name, size: content.length, mtime: date }), content, tarPadding(content.length)])));
    },
    async finish(beforeComplete) {
      if (entryOpen) throw new Error('Cannot finish the archive: an entry is still being written');
      await append(await gzipMember(tarEnd()));
      if (pendingBytes > 0) await send(nextPart++, takePending());
      try {
        await upload.partsSent();
      } catch (error) {
        throw failedStep(uploadTo, error);
      }
      await beforeComplete?.();
      try {
        await upload.complete();
      } catch (error) {
        throw failedStep(uploadTo, error);
      }
      return { compressedBytes };
    },
    async cancel() {
      await upload.abort();
    },
  };
}
