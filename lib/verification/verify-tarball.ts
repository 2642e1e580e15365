import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { CsvRecordCounter } from '../export/count-csv-records';
import { TarFormatError, TarStreamReader, TarTruncatedError } from './read-tar-stream';
import type { TarEntryHeader } from './read-tar-stream';
import { compareWithManifest, MANIFEST_ENTRY } from './compare-with-manifest';
import type { ArchivedCsv, CheckedTable, VerificationProblem } from './compare-with-manifest';

export type { ArchivedCsv, CheckedTable, VerificationProblem } from './compare-with-manifest';

/** The manifest lists a few hundred bytes per table; a bigger one is not the export's. */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

export interface TarballVerification {
  /** `unreadable`: not a gzip file at all (or empty); nothing inside could be checked. */
  status: 'verified' | 'failed' | 'unreadable';
  /** The schema the manifest names, when it could be read. */
  schema?: string;
  /** Each CSV read whole from the archive, with what was counted. */
  csvFiles: ArchivedCsv[];
  /** The manifest's tables found in the archive, in the manifest's order (empty without a manifest). */
  tables: CheckedTable[];
  problems: VerificationProblem[];
  compressedBytes: number;
}

/** The object does not start with gzip's magic bytes (1f 8b): it is not a .tgz at all. */
export class NotGzipError extends Error {
  override readonly name = 'NotGzipError';
}

/**
 * Checks an export tarball as it streams past, in bounded memory with nothing written to disk:
 * gunzip (several gzip members back to back are one stream, RFC 1952) -> tar entries -> per CSV
 * its bytes, CSV records and sha256, exactly as the export counted them (stream-table-as-csv.ts:
 * rows are records less the header) -> compared with `<schema>/manifest.json` both ways.
 *
 * Failures to read the source itself (a dropped connection) are thrown; everything wrong with the
 * tarball's content is returned as problems.
 */
export async function verifyTarball(source: Readable | AsyncIterable<Buffer>): Promise<TarballVerification> {
  const csvFiles: ArchivedCsv[] = [];
  const problems: VerificationProblem[] = [];
  const entryNames = new Set<string>();
  let manifest: Buffer | undefined;
  let compressedBytes = 0;

  let current:
    | { kind: 'csv'; file: string; bytes: number; hash: Hash; records: CsvRecordCounter }
    | { kind: 'manifest'; chunks: Buffer[] }
    | { kind: 'skip' }
    | undefined;

  const tar = new TarStreamReader({
    entry(header: TarEntryHeader) {
      if (entryNames.has(header.name)) {
        problems.push({ kind: 'duplicate-entry', file: header.name, message: `${header.name} appears more than once in the archive` });
      }
      entryNames.add(header.name);
      if (header.kind === 'directory') current = { kind: 'skip' };
      else if (header.kind !== 'file') {
        problems.push({ kind: 'unexpected-entry', file: header.name, message: `${header.name} is not a regular file (tar type ${header.typeFlag})` });
        current = { kind: 'skip' };
      } else if (MANIFEST_ENTRY.test(header.name)) {
        if (header.size > MAX_MANIFEST_BYTES) throw new TarFormatError(`${header.name} is ${header.size} bytes: too large to be a manifest`);
        current = { kind: 'manifest', chunks: [] };
      } else {
        current = { kind: 'csv', file: header.name, bytes: 0, hash: createHash('sha256'), records: new CsvRecordCounter() };
      }
    },
    data(chunk) {
      if (current?.kind === 'csv') {
        current.hash.update(chunk);
        current.records.scan(chunk);
        current.bytes += chunk.length;
      } else if (current?.kind === 'manifest') {
        // Copied: the chunk is a view of gunzip's output buffer.
        current.chunks.push(Buffer.from(chunk));
      }
    },
    entryEnd() {
      if (current?.kind === 'csv') {
        const { file, bytes, hash, records } = current;
        csvFiles.push({ file, bytes, rows: Math.max(records.count - 1, 0), sha256: hash.digest('hex') });
      } else if (current?.kind === 'manifest') {
        if (manifest) problems.push({ kind: 'manifest-invalid', message: 'The archive holds more than one manifest.json' });
        manifest = Buffer.concat(current.chunks);
      }
      current = undefined;
    },
  });

  let firstBytes = Buffer.alloc(0);
  async function* checkGzipMagic(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of input) {
      const seenBefore = compressedBytes;
      compressedBytes += chunk.length;
      if (seenBefore < 2) {
        firstBytes = Buffer.concat([firstBytes, chunk]).subarray(0, 2);
        if (firstBytes.length === 2 && (firstBytes[0] !== 0x1f || firstBytes[1] !== 0x8b)) {
          throw new NotGzipError(`Not a gzip file (it starts with bytes ${firstBytes.toString('hex')}, not 1f8b)`);
        }
      }
      yield chunk;
    }
    if (compressedBytes < 2) throw new NotGzipError(compressedBytes === 0 ? 'The file is empty' : 'Not a gzip file (1 byte)');
  }

  let broken: VerificationProblem | undefined;
  try {
    // 1 MiB output chunks: a quarter of the calls into the hash and counter of zlib's 16 KiB default.
    await pipeline(source, checkGzipMagic, createGunzip({ chunkSize: 1024 * 1024 }), async (inflated: AsyncIterable<Buffer>) => {
      for await (const chunk of inflated) tar.write(chunk);
      tar.end();
    });
  } catch (error) {
    broken = describeBrokenStream(error);
    if (!broken) throw error;
  }

  if (broken?.kind === 'not-gzip') return { status: 'unreadable', csvFiles, tables: [], problems: [broken], compressedBytes };
  // A cut or corrupted stream explains whatever else is missing; comparing further would only add noise.
  if (broken) return { status: 'failed', csvFiles, tables: [], problems: [broken, ...problems], compressedBytes };

  const compared = compareWithManifest(manifest, csvFiles);
  problems.push(...compared.problems);
  return { status: problems.length === 0 ? 'verified' : 'failed', schema: compared.schema, csvFiles, tables: compared.tables, problems, compressedBytes };
}

/** What a failure of the gunzip or tar stage says about the tarball; undefined for other failures (reading the source). */
function describeBrokenStream(error: unknown): VerificationProblem | undefined {
  if (error instanceof NotGzipError) return { kind: 'not-gzip', message: error.message };
  if (error instanceof TarTruncatedError) return { kind: 'truncated', message: `Truncated: ${error.message}` };
  if (error instanceof TarFormatError) return { kind: 'corrupt', message: `Not a valid tar archive: ${error.message}` };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    // zlib says "unexpected end of file" (Z_BUF_ERROR) when the compressed stream stops mid-member.
    if (code === 'Z_BUF_ERROR') return { kind: 'truncated', message: `Truncated: the gzip stream ends unexpectedly (${(error as Error).message})` };
    return { kind: 'corrupt', message: `The gzip stream is corrupt: ${(error as Error).message} (${code})` };
  }
  return undefined;
}
