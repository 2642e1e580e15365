import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { CsvRecordCounter } from '../export/count-csv-records';
import { TarFormatError, TarStreamReader, TarTruncatedError } from './read-tar-stream';
import type { TarEntryHeader } from './read-tar-stream';
import { MANIFEST_ENTRY } from './compare-with-manifest';
import type { ArchivedCsv, VerificationProblem } from './compare-with-manifest';

/** `<schema>/definition.json` and `<schema>/schema.sql`: what rebuilds the schema (lib/definition). */
export const DEFINITION_ENTRY = /^[^/]+\/definition\.json$/;
export const SCHEMA_SQL_ENTRY = /^[^/]+\/schema\.sql$/;

/** The manifest and the definition list a few hundred bytes per table; a bigger one is not the export's. */
const MAX_METADATA_BYTES = 16 * 1024 * 1024;

/** Where a CSV's bytes go as they stream past (the restore's COPY ... FROM STDIN). */
export interface CsvEntrySink {
  /** May return a promise to hold the stream back until the bytes are taken. */
  write(chunk: Buffer): void | Promise<void>;
  /** The entry's bytes have all been written; with `countsRows`, resolves with the CSV's rows. */
  end(): void | Promise<void | number>;
  /**
   * The sink counts the CSV's rows (records less the header) itself, and the reader counts none:
   * a `COPY ... FROM STDIN (FORMAT csv, HEADER)` loads exactly those, and says how many. The
   * restore's tables are counted so: the record counter's scan was its process's largest cost
   * after gunzip and SHA-256 (npm run bench:restore, 2026-12-07, three pairs: 6.3-6.6 → 5.4-5.9
   * CPU seconds), and the COPY's count was compared with it anyway. Bytes and sha256 are the
   * reader's as ever, so the CSV is still the one the manifest describes, byte for byte.
   */
  countsRows?: boolean;
}

export interface TarballReading {
  /**
   * Called at each CSV entry (its size is the tar header's): a sink to take its bytes, `skip` to
   * pass over it unchecked (another reader of the same tarball checks and loads it), or nothing
   * to check it only. Checked CSVs are listed in `csvFiles`.
   */
  onCsv?(entry: { file: string; size: number }): CsvEntrySink | 'skip' | undefined;
  /** The definition entry, whole, as soon as it has been read (it is the archive's first entry). */
  onDefinition?(bytes: Buffer): void | Promise<void>;
}

/** A tar entry that is not a CSV, kept whole: the manifest, the definition, schema.sql. */
export interface ArchivedMetadata {
  file: string;
  bytes: Buffer;
  sha256: string;
}

export interface TarballContents {
  /** Set when the stream itself is broken: not gzip, truncated, corrupt. What follows was not read. */
  broken?: VerificationProblem;
  csvFiles: ArchivedCsv[];
  manifest?: ArchivedMetadata;
  definition?: ArchivedMetadata;
  schemaSql?: ArchivedMetadata;
  /** Every entry's name, in the archive's order. */
  entries: string[];
  /** Problems of the archive's shape: duplicate entries, entries that are not regular files. */
  problems: VerificationProblem[];
  compressedBytes: number;
}

/** The object does not start with gzip's magic bytes (1f 8b): it is not a .tgz at all. */
export class NotGzipError extends Error {
  override readonly name = 'NotGzipError';
}

type Current =
  | { kind: 'csv'; file: string; bytes: number; hash: Hash; records?: CsvRecordCounter; sink?: CsvEntrySink }
  | { kind: 'metadata'; role: 'manifest' | 'definition' | 'schemaSql'; file: string; chunks: Buffer[] }
  | { kind: 'skip' }
  | undefined;

/**
 * Reads an export tarball as it streams past, in bounded memory with nothing written to disk:
 * gunzip (several gzip members back to back are one stream, RFC 1952) -> tar entries -> per CSV
 * its bytes, CSV records and sha256, exactly as the export counted them (stream-table-as-csv.ts:
 * rows are records less the header), each CSV's bytes handed on to the caller's sink as they are
 * counted. The verifier (verify-tarball.ts) and the restore both read tarballs through this, so
 * what the restore loads is checked by the verifier's own code.
 *
 * Failures to read the source, and a sink's failures, are thrown; a broken stream is returned.
 */
export async function readExportTarball(source: Readable | AsyncIterable<Buffer>, reading: TarballReading = {}): Promise<TarballContents> {
  const contents: TarballContents = { csvFiles: [], entries: [], problems: [], compressedBytes: 0 };
  const seen = new Set<string>();
  // A sink's writes and ends, awaited after each chunk given to the tar reader (which is synchronous).
  let waits: Promise<void>[] = [];
  const waitFor = (result: void | Promise<void>): void => {
    if (result) waits.push(result);
  };
  let current: Current;

  const tar = new TarStreamReader({
    entry(header: TarEntryHeader) {
      contents.entries.push(header.name);
      if (seen.has(header.name)) {
        contents.problems.push({ kind: 'duplicate-entry', file: header.name, message: `${header.name} appears more than once in the archive` });
      }
      seen.add(header.name);
      const role = MANIFEST_ENTRY.test(header.name) ? 'manifest' : DEFINITION_ENTRY.test(header.name) ? 'definition' : SCHEMA_SQL_ENTRY.test(header.name) ? 'schemaSql' : undefined;
      if (header.kind === 'directory') current = { kind: 'skip' };
      else if (header.kind !== 'file') {
        contents.problems.push({ kind: 'unexpected-entry', file: header.name, message: `${header.name} is not a regular file (tar type ${header.typeFlag})` });
        current = { kind: 'skip' };
      } else if (role) {
        if (header.size > MAX_METADATA_BYTES) throw new TarFormatError(`${header.name} is ${header.size} bytes: too large to be an export's ${role}`);
        current = { kind: 'metadata', role, file: header.name, chunks: [] };
      } else {
        const sink = reading.onCsv?.({ file: header.name, size: header.size });
        current =
          sink === 'skip'
            ? { kind: 'skip' }
            : { kind: 'csv', file: header.name, bytes: 0, hash: createHash('sha256'), records: sink?.countsRows ? undefined : new CsvRecordCounter(), sink };
      }
    },
    data(chunk) {
      if (current?.kind === 'csv') {
        current.hash.update(chunk);
        current.records?.scan(chunk);
        current.bytes += chunk.length;
        // gunzip's output chunks are never reused (zlib allocates a new buffer once one is
        // handed out), so the view may be kept past this call.
        if (current.sink) waitFor(current.sink.write(chunk));
      } else if (current?.kind === 'metadata') {
        current.chunks.push(Buffer.from(chunk));
      }
    },
    entryEnd() {
      if (current?.kind === 'csv') {
        const { file, bytes, hash, records, sink } = current;
        const csv: ArchivedCsv = { file, bytes, rows: records ? Math.max(records.count - 1, 0) : 0, sha256: hash.digest('hex') };
        contents.csvFiles.push(csv);
        if (sink) {
          waitFor(
            Promise.resolve(sink.end()).then((rows) => {
              if (sink.countsRows && typeof rows === 'number') csv.rows = rows;
            }),
          );
        }
      } else if (current?.kind === 'metadata') {
        const bytes = Buffer.concat(current.chunks);
        const entry = { file: current.file, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
        if (contents[current.role]) {
          contents.problems.push({ kind: current.role === 'manifest' ? 'manifest-invalid' : 'duplicate-entry', file: current.file, message: `The archive holds more than one ${current.file.slice(current.file.indexOf('/') + 1)}` });
        } else {
          contents[current.role] = entry;
          if (current.role === 'definition') waitFor(reading.onDefinition?.(bytes));
        }
      }
      current = undefined;
    },
  });

  let firstBytes = Buffer.alloc(0);
  async function* checkGzipMagic(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of input) {
      const seenBefore = contents.compressedBytes;
      contents.compressedBytes += chunk.length;
      if (seenBefore < 2) {
        firstBytes = Buffer.concat([firstBytes, chunk]).subarray(0, 2);
        if (firstBytes.length === 2 && (firstBytes[0] !== 0x1f || firstBytes[1] !== 0x8b)) {
          throw new NotGzipError(`Not a gzip file (it starts with bytes ${firstBytes.toString('hex')}, not 1f8b)`);
        }
      }
      yield chunk;
    }
    if (contents.compressedBytes < 2) throw new NotGzipError(contents.compressedBytes === 0 ? 'The file is empty' : 'Not a gzip file (1 byte)');
  }

  try {
    // 1 MiB output chunks: a quarter of the calls into the hash and counter of zlib's 16 KiB default.
    await pipeline(source, checkGzipMagic, createGunzip({ chunkSize: 1024 * 1024 }), async (inflated: AsyncIterable<Buffer>) => {
      for await (const chunk of inflated) {
        tar.write(chunk);
        if (waits.length > 0) {
          const pending = waits;
          waits = [];
          await settleAll(pending);
        }
      }
      tar.end();
      await settleAll(waits);
    });
  } catch (error) {
    const broken = describeBrokenStream(error);
    if (!broken) throw error;
    contents.broken = broken;
  }
  return contents;
}

/** Waits for every promise (none left to reject unheard), then throws the first failure. */
async function settleAll(promises: Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

/** What a failure of the gunzip or tar stage says about the tarball; undefined for other failures (reading the source, a sink). */
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
