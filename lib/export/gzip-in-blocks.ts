import { promisify } from 'node:util';
import { constants, createGzip, gzip } from 'node:zlib';
import type { Gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

/**
 * gzip level 1 with zlib's largest hash table (memLevel 9). Measured with Node's zlib on 314 MB
 * of the bench's licence-like CSV, in 1 MiB blocks, on one core (MB of CSV per CPU second, and
 * CSV size / gzip size): level 1 / memLevel 9: 124 MB/s, 4.53; level 1 / 8: 116, 4.53; level 2:
 * 110, 4.57; level 3: 103, 4.59; level 4: 82, 4.66; level 6 (gzip's default) took 1.6x as long
 * as level 3 for 9% less. Compression is the export's largest CPU cost after the server's COPY,
 * and the tarballs are transient, so 20% less CPU is worth 1.5% more bytes.
 */
export const GZIP_LEVEL = 1;
const MEM_LEVEL = 9;

/**
 * Blocks compressed at once. Each zlib.gzip call runs on libuv's thread pool (4 threads unless
 * UV_THREADPOOL_SIZE says otherwise), so one table's compression spreads over every core the
 * way pigz does, while the main thread keeps reading COPY. Four keeps two cores busy with one
 * block queued behind each; memory is about 1.3 MiB per block.
 */
export const BLOCKS_IN_FLIGHT = 4;

/**
 * 256 KiB output buffers: zlib finishes a block of CSV (~4:1) in one trip to the thread pool
 * instead of one per 16 KiB of output, each handled on the main thread (that handling was the
 * main thread's largest cost in a CPU profile); 1 MiB buffers raised peak RSS ~30 MB.
 */
const OUTPUT_CHUNK_BYTES = 256 * 1024;

/**
 * A gzip stream used for one member after another: each block is written, finished (Z_FINISH)
 * and the stream reset, so its deflate state (~0.5 MB with memLevel 9) and output buffer are
 * allocated once per table rather than once per MiB of CSV. Allocating them per block was most
 * of the export's garbage: about one full garbage collection every 200 ms, ~3 CPU seconds on a
 * 1.27 GB table.
 */
class MemberCompressor {
  private readonly stream: Gzip;
  private output: Buffer[] = [];
  private failed: ((error: Error) => void) | undefined;
  private busy = false;
  private closing = false;

  constructor(level: number) {
    this.stream = createGzip({ level, memLevel: MEM_LEVEL, chunkSize: OUTPUT_CHUNK_BYTES });
    this.stream.on('data', (piece: Buffer) => this.output.push(piece));
    this.stream.on('error', (error: Error) => this.failed?.(error));
  }

  /** Resolves with the member as zlib wrote it: in pieces, views of its output buffers. */
  compress(block: Buffer): Promise<Buffer[]> {
    this.busy = true;
    return new Promise((resolve, reject) => {
      this.failed = reject;
      this.stream.write(block);
      this.stream.flush(constants.Z_FINISH, () => {
        this.busy = false;
        this.failed = undefined;
        const member = this.output;
        this.output = [];
        if (this.closing) this.stream.destroy();
        // deflateReset: documented for zlib streams, missing from @types/node's Gzip.
        else (this.stream as unknown as { reset(): void }).reset();
        resolve(member);
      });
    });
  }

  /**
   * Frees the stream; one still compressing is freed when it is done (destroying it meanwhile
   * throws "zlib binding closed" from the thread pool's callback: an uncaught exception).
   */
  close(): void {
    if (this.busy) this.closing = true;
    else this.stream.destroy();
  }
}

/**
 * Compresses a stream of (about 1 MiB) blocks, each into a gzip member of its own, in order;
 * each member comes as the pieces zlib wrote it in (a member mostly spans two of zlib's output
 * buffers, and joining the pieces would allocate and copy every compressed byte once more).
 *
 * RFC 1952 lets a gzip file be members back to back, and gzip, GNU tar, Python and Node's zlib
 * read them as one stream, so the concatenated output is an ordinary .gz. Restarting the
 * dictionary every MiB costs well under 1% of size; 18 bytes of member header and trailer per
 * MiB are nothing. Each block is handed to `onCompressed` once zlib is done with it (the caller
 * may reuse it). Giving up early (return or throw from the consumer) drops the blocks still
 * being compressed; their results are discarded, never left unhandled.
 */
export async function* gzipInBlocks(
  source: AsyncIterable<Buffer>,
  { level = GZIP_LEVEL, blocksInFlight = BLOCKS_IN_FLIGHT, onCompressed }: { level?: number; blocksInFlight?: number; onCompressed?: (block: Buffer) => void } = {},
): AsyncGenerator<Buffer[]> {
  const idle: MemberCompressor[] = [];
  const all: MemberCompressor[] = [];
  const pending: Promise<Buffer[]>[] = [];
  try {
    for await (const block of source) {
      if (block.length === 0) continue;
      let compressor = idle.pop();
      if (!compressor) all.push((compressor = new MemberCompressor(level)));
      const using = compressor;
      const compressing = using.compress(block).then((member) => {
        idle.push(using);
        onCompressed?.(block);
        return member;
      });
      compressing.catch(() => {});
      pending.push(compressing);
      while (pending.length >= blocksInFlight) yield await pending.shift()!;
    }
    while (pending.length > 0) yield await pending.shift()!;
  } finally {
    pending.length = 0;
    for (const compressor of all) compressor.close();
  }
}

/** One small member of its own, for the tar headers and padding between tables' members. */
export function gzipMember(content: Buffer, level = GZIP_LEVEL): Promise<Buffer> {
  return gzipAsync(content, { level });
}
