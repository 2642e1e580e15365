import type { Readable } from 'node:stream';
// ISql: a plain client, a reserved connection or a transaction.
import type { ISql } from 'postgres';
import { CopyDataTap } from '../clients/copy-data-tap';
import type { CopyDataSink } from '../clients/copy-data-tap';
import { BlockPool } from './block-pool';

/**
 * A COPY's output, in buffers of its BlockPool's size. `copyEnded` resolves once its connection can
 * take the next statement; `rowsCounted()` is the CopyData messages read (the server sends one
 * per row, header line included).
 */
export type CopyOut = Readable & { copyEnded: Promise<void>; rowsCounted: () => number };

/** Size of the buffers rows are gathered into before anyone downstream sees them. */
export const COPY_CHUNK_BYTES = 1024 * 1024;

/**
 * Runs a `COPY ... TO STDOUT` and returns its output as a stream of buffers taken from `blocks`
 * (1 MiB unless the pool says otherwise; give them back when done with them); `signal`
 * cancels it (on the server too). `sql` must come from connectDatabase: the rows are taken off
 * the wire by the connection's CopyDataTap, gathered straight into the buffers, and never reach
 * postgres.js one by one (the stream returned is postgres.js's own COPY stream, fed by the tap).
 *
 * Also works around postgres.js 3.4's COPY OUT stream (connection.js):
 *
 * 1. porsager/postgres#499: the socket can stay paused after the COPY's end, so that the
 *    connection's next statement waits forever. The tap pauses the socket only while its COPY
 *    goes on, and the socket is resumed when the stream closes: by then the consumer has read
 *    everything, so resuming cannot overrun it. A consumer that gives up early destroys the
 *    stream; the rest of the COPY is then read and dropped, letting the transaction reach
 *    ROLLBACK instead of hanging (or cancelled, with `signal`).
 */
export async function openCopyOut(
  sql: ISql,
  statement: string,
  { blocks = new BlockPool(COPY_CHUNK_BYTES), signal }: { blocks?: BlockPool; signal?: AbortSignal } = {},
): Promise<CopyOut> {
  signal?.throwIfAborted();
  const query = sql.unsafe(statement);

  let stream: Readable | undefined;
  let pushToQueue!: (chunk: Buffer | null) => boolean;
  const chunkBytes = blocks.size;
  let gathered = blocks.take();
  let used = 0;
  const pushGathered = (): boolean => {
    if (used === 0 || !stream || stream.destroyed) return true;
    const chunk = gathered.subarray(0, used);
    gathered = blocks.take();
    used = 0;
    return pushToQueue(chunk);
  };
  const sink: CopyDataSink = {
    rows: 0,
    write(bytes) {
      // A consumer that gave up: the rest is dropped, with the socket kept flowing.
      if (!stream || stream.destroyed) return true;
      let flowing = true;
      let from = 0;
      while (from < bytes.length) {
        const take = Math.min(chunkBytes - used, bytes.length - from);
        bytes.copy(gathered, used, from, from + take);
        used += take;
        from += take;
        if (used === chunkBytes) flowing = pushGathered() && flowing;
      }
      return flowing;
    },
  };

  // postgres.js resolves the query with its COPY stream while it handles the CopyOutResponse,
  // synchronously inside the tap's hand-over: that is when the tap is found and the sink
  // attached, before the first row is read. `resolve` is postgres.js's own (src/query.js), also
  // called once more when the query completes; not in its types.
  // 2. A COPY that fails at its first row (a row-level policy or an expression that errors): the
  //    ErrorResponse can arrive in the socket read that started the COPY, so postgres.js destroys
  //    the stream with the error right after resolving the query with it, and the 'error' event is
  //    emitted (process.nextTick) before our await resumes: with no listener it is an uncaught
  //    exception that ends the process. A listener attached the moment postgres.js hands the
  //    stream over keeps it an ordinary error, which the consumer still gets from the stream.
  // The connection is free for the next statement (ROLLBACK, the next COPY) only once postgres.js
  // has seen the COPY end: at CopyDone it pushes null, and on an error or a closed connection it
  // destroys the stream with that error. Until then it refuses any query ("COPY_IN_PROGRESS"),
  // even after our consumer has destroyed the stream, so that is watched.
  let markEnded!: () => void;
  const copyEnded = new Promise<void>((resolve) => (markEnded = resolve));
  let destroy!: (error?: Error) => void;

  const pending = query as unknown as { resolve(value: unknown): void };
  const resolve = pending.resolve.bind(pending);
  pending.resolve = (value) => {
    if (!stream && value && typeof (value as Readable).on === 'function') {
      const copy = (stream = value as Readable);
      copy.on('error', () => {});
      const tap = CopyDataTap.dispatching();
      if (!tap) {
        // Thrown inside postgres.js's message handling, this becomes the query's error; the
        // rows the server sent before the cancel arrives are dropped by postgres.js.
        query.cancel();
        throw new Error('openCopyOut needs a database client opened by connectDatabase (lib/clients/database.ts)');
      }
      pushToQueue = copy.push.bind(copy);
      copy.push = (chunk: Buffer | null): boolean => {
        if (chunk !== null) return pushToQueue(chunk);
        markEnded();
        pushGathered();
        return pushToQueue(null);
      };
      destroy = copy.destroy.bind(copy);
      copy.destroy = (error?: Error): typeof copy => {
        // A consumer that stops reading destroys without an error; postgres.js always gives one.
        if (error) markEnded();
        destroy(error);
        return copy;
      };
      // postgres.js's read() is `socket.resume()`; the tap's resume is the same, named.
      copy._read = () => tap.resume();
      copy.once('close', () => tap.resume());
      tap.attach(sink);
    }
    resolve(value);
  };
  await query.readable();
  const copy = stream!;

  // A COPY that is no longer wanted (another table of the schema failed) is cancelled on the
  // server, rather than read to its end and discarded: that could be gigabytes. The server then
  // ends it with an error, which marks it ended.
  const cancel = (): void => {
    query.cancel();
    destroy(signal?.reason instanceof Error ? signal.reason : new Error('The COPY was cancelled'));
  };
  if (signal?.aborted) cancel();
  signal?.addEventListener('abort', cancel, { once: true });
  copy.once('close', () => signal?.removeEventListener('abort', cancel));
  return Object.assign(copy, { copyEnded, rowsCounted: () => sink.rows });
}
