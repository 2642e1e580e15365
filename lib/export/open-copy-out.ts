import type { Readable } from 'node:stream';
// ISql: a plain client or the transaction inside sql.begin.
import type { ISql } from 'postgres';

/**
 * A COPY's output. `copyEnded` resolves once its connection can take the next statement.
 * Records (header included) = those in the first `bytesBeforeCounting` bytes, which arrived
 * before rows could be counted here (count them by scanning), plus `rowsCounted()`.
 */
export type CopyOut = Readable & { copyEnded: Promise<void>; bytesBeforeCounting: number; rowsCounted: () => number };

/** Size of the buffers rows are gathered into before anyone downstream sees them. */
export const COPY_CHUNK_BYTES = 1024 * 1024;

/**
 * Runs a `COPY ... TO STDOUT` and returns its output as a stream of ~1 MiB buffers; `signal`
 * cancels it (on the server too).
 *
 * Works around two behaviours of postgres.js 3.4's COPY OUT stream (connection.js):
 *
 * 1. One chunk per row (one CopyData message each). Hashing, writing and gzipping ~100-byte
 *    chunks costs far more than the copying, so rows are gathered into large buffers here,
 *    before they enter the Readable's queue at all.
 *
 * 2. porsager/postgres#499: CopyData pauses the socket whenever push() returns false, and only
 *    the stream's read() resumes it. When the last rows and CopyDone arrive in one socket read
 *    and the stream's buffer is full, the stream ends with the socket still paused; read() is
 *    never called again after the end, so CommandComplete/ReadyForQuery are never read and the
 *    next query on the connection (the next table's COPY, or COMMIT) waits forever. Upstream's
 *    fix (PR #1016, unreleased) resumes the socket at CopyDone. We do the same from outside, when
 *    the stream closes: by then the consumer has read everything, so resuming cannot overrun it,
 *    and it also covers rows pushed before this function got hold of the stream.
 *    A consumer that gives up early destroys the stream; pushes to a destroyed stream return
 *    false and would pause the socket again for good, so the rest of the COPY is discarded with
 *    the socket kept flowing, letting the transaction reach ROLLBACK instead of hanging.
 */
export async function openCopyOut(
  sql: ISql,
  statement: string,
  { chunkBytes = COPY_CHUNK_BYTES, signal }: { chunkBytes?: number; signal?: AbortSignal } = {},
): Promise<CopyOut> {
  signal?.throwIfAborted();
  const query = sql.unsafe(statement);
  // 3. A COPY that fails at its first row (a row-level policy or an expression that errors): the
  //    ErrorResponse can arrive in the socket read that started the COPY, so postgres.js destroys
  //    the stream with the error right after resolving the query with it, and the 'error' event is
  //    emitted (process.nextTick) before our await resumes: with no listener it is an uncaught
  //    exception that ends the process (seen in test/integration/export-failures.test.ts). A
  //    listener attached the moment postgres.js hands the stream over keeps it an ordinary error,
  //    which the consumer still gets from the destroyed stream. `resolve` is postgres.js's own
  //    (src/query.js), called synchronously by its CopyOutResponse handler; not in its types.
  const pending = query as unknown as { resolve(value: unknown): void };
  const resolve = pending.resolve.bind(pending);
  pending.resolve = (value) => {
    (value as Readable | undefined)?.on?.('error', () => {});
    resolve(value);
  };
  const stream = await query.readable();

  // The connection is free for the next statement (ROLLBACK, the next COPY) only once postgres.js
  // has seen the COPY end: at CopyDone it pushes null, and on an error or a closed connection it
  // destroys the stream with that error. Until then it refuses any query ("COPY_IN_PROGRESS"),
  // even after our consumer has destroyed the stream, so that is watched here.
  let markEnded!: () => void;
  const copyEnded = new Promise<void>((resolve) => (markEnded = resolve));
  const destroy = stream.destroy.bind(stream);
  stream.destroy = (error?: Error): typeof stream => {
    // A consumer that stops reading destroys without an error; postgres.js always gives one.
    if (error) markEnded();
    return destroy(error);
  };
  // A small table's rows and CopyDone can all arrive in the socket read that resolved readable(),
  // before push was replaced below; the stream's own state says so.
  if (stream.destroyed || (stream as unknown as { _readableState: { ended: boolean } })._readableState.ended) markEnded();
  stream.once('end', markEnded);

  // A COPY that is no longer wanted (another table of the schema failed) is cancelled on the
  // server, rather than read to its end and discarded: that could be gigabytes. The server then
  // ends it with an error, which marks it ended.
  const cancel = (): void => {
    query.cancel();
    destroy(signal?.reason instanceof Error ? signal.reason : new Error('The COPY was cancelled'));
  };
  if (signal?.aborted) cancel();
  signal?.addEventListener('abort', cancel, { once: true });
  stream.once('close', () => signal?.removeEventListener('abort', cancel));
  const pushToQueue = stream.push.bind(stream);
  // postgres.js's read() is `socket.resume()`; kept to resume the socket once the stream closes.
  const resumeSocket = stream._read.bind(stream);

  // The server sends "CopyData messages (always one per row)" (protocol docs, Copy-out mode;
  // changing that would break the wire protocol), so rows are counted here, one per push,
  // rather than by scanning the CSV for record ends, which cost more CPU than sha256 did. Only
  // the rows pushed before push was replaced (all queued, nothing read yet) need a scan.
  const bytesBeforeCounting = stream.readableLength;
  let rows = 0;
  let gathered = Buffer.allocUnsafe(chunkBytes);
  let used = 0;
  const flush = (): boolean => {
    if (used === 0) return true;
    const chunk = gathered.subarray(0, used);
    gathered = Buffer.allocUnsafe(chunkBytes);
    used = 0;
    return pushToQueue(chunk);
  };

  // The return value tells postgres.js whether to pause the socket (false = pause).
  stream.push = (row: Buffer | null): boolean => {
    if (row === null) {
      markEnded();
      if (stream.destroyed) return true;
      flush();
      return pushToQueue(null);
    }
    if (stream.destroyed) return true;
    rows += 1;
    const flowing = used + row.length > chunkBytes ? flush() : true;
    // A row bigger than a whole buffer goes on as it is; it is a fresh buffer, not a shared one.
    if (row.length >= chunkBytes) return pushToQueue(row) && flowing;
    row.copy(gathered, used);
    used += row.length;
    return flowing;
  };

  stream.once('close', () => {
    // A connection that ended during the COPY (pg_terminate_backend, a failover, a restart) has
    // already destroyed the stream with its error and dropped its socket: read() would throw
    // "Cannot read properties of null (reading 'resume')" from this listener, an uncaught
    // exception that took the whole process down. There is nothing left to resume then.
    try {
      resumeSocket(0);
    } catch {
      // the socket is gone; the stream's own error reports the failure
    }
  });
  return Object.assign(stream, { copyEnded, bytesBeforeCounting, rowsCounted: () => rows });
}
