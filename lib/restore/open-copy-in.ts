import type { Writable } from 'node:stream';
// ISql: a plain client, a reserved connection or a transaction.
import type { ISql } from 'postgres';
import { CopyDataTap } from '../clients/copy-data-tap';
import type { CopyDataOutput } from '../clients/copy-data-tap';

const COPY_DATA = 0x64; // 'd'

/** A `COPY ... FROM STDIN` under way: bytes in with back-pressure, then the server's verdict. */
export interface CopyIn {
  /** Sends bytes; resolves when the connection can take more. Rejects once the COPY has failed. */
  write(chunk: Buffer): Promise<void> | void;
  /** Ends the data; resolves with the rows the server loaded, or rejects with the server's error. */
  end(): Promise<number>;
  /** Abandons the COPY: the server rolls it back. Resolves once the connection is free again. */
  abort(reason: Error): Promise<void>;
}

/**
 * Starts a `COPY ... FROM STDIN` on `sql` (a reserved connection or a transaction).
 *
 * postgres.js 3.4 resolves the query with its Writable at CopyInResponse, and settles nothing
 * after that: when the server rejects a row once the data has ended, or the connection closes,
 * it calls the query's `reject` on a promise already resolved (a no-op), and the Writable's
 * `finish` never comes (its final callback is only called at CommandComplete). So the query's
 * own resolve and reject (src/query.js; not in its types) are wrapped here, as openCopyOut does
 * for COPY TO: the second resolve (at ReadyForQuery, with the command's result) is success, any
 * reject is the failure, whenever it comes.
 *
 * On a client opened by connectDatabase the rows bypass postgres.js's Writable: it frames each
 * chunk as a CopyData message by copying it, with the 5-byte header, into a new buffer
 * (Buffer.concat in its bytes.js), the table's whole size again in copies and in garbage that
 * drives V8's full collections. Here the header and the chunk go onto the connection's socket
 * together (cork: one writev), found through its CopyDataTap. postgres.js still ends the COPY
 * (CopyDone, or CopyFail on abort) on the same socket, after these writes. Restoring the 1.19 GB
 * of CSV of npm run bench:restore (2026-12-07, three alternating pairs): our process's CPU 8.9–9.1
 * → 7.2–8.1 s, full collections 113 → 87, peak RSS 149–158 → 141–145 MB. Any other client (a
 * plain postgres()) has no tap: its rows go through postgres.js's Writable as before.
 */
export async function openCopyIn(sql: ISql, statement: string): Promise<CopyIn> {
  const query = sql.unsafe(statement);
  const pending = query as unknown as { resolve(value: unknown): void; reject(error: unknown): void };
  let stream: Writable | undefined;
  let output: CopyDataOutput | undefined;
  let markDone!: (count: number) => void;
  let markFailed!: (error: Error) => void;
  const outcome = new Promise<number>((resolve, reject) => {
    markDone = resolve;
    markFailed = reject;
  });
  // Heard by end() or write(); never an unhandled rejection if neither is waiting.
  outcome.catch(() => {});
  let failure: Error | undefined;

  const resolve = pending.resolve.bind(pending);
  const reject = pending.reject.bind(pending);
  pending.resolve = (value) => {
    if (!stream && value && typeof (value as Writable).write === 'function') {
      stream = value as Writable;
      // postgres.js destroys the stream with the server's error; the error is taken from reject.
      stream.on('error', () => {});
      // Called while postgres.js handles the CopyInResponse, so the tap is this connection's.
      output = CopyDataTap.dispatching()?.output;
    } else {
      markDone((value as { count?: number } | undefined)?.count ?? 0);
    }
    resolve(value);
  };
  pending.reject = (error) => {
    failure ??= error instanceof Error ? error : new Error(String(error));
    markFailed(failure);
    reject(error);
  };

  const writable = (await query.writable()) as unknown as Writable;
  /** Resolves at the target's 'drain', or with the COPY's outcome if that comes first. */
  const drainOf = (target: Pick<CopyDataOutput, 'once' | 'off'>): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const drained = (): void => resolve();
      target.once('drain', drained);
      // A Writable that is ending emits no 'drain' (Node's afterWrite): a write the tar reader
      // made just before the entry's end() waits for the COPY's outcome instead.
      outcome.then(
        () => {
          target.off('drain', drained);
          resolve();
        },
        (error: unknown) => {
          target.off('drain', drained);
          reject(error as Error);
        },
      );
    });
  return {
    write(chunk) {
      if (failure) throw failure;
      if (!output) return writable.write(chunk) ? undefined : drainOf(writable);
      const header = Buffer.allocUnsafe(5);
      header[0] = COPY_DATA;
      header.writeUInt32BE(chunk.length + 4, 1);
      output.cork();
      output.write(header);
      const ready = output.write(chunk);
      output.uncork();
      return ready ? undefined : drainOf(output);
    },
    async end() {
      if (failure) throw failure;
      writable.end();
      return outcome;
    },
    async abort(reason) {
      if (failure) return;
      // CopyFail: the server ends the COPY with an error, which settles `outcome`.
      writable.destroy(reason);
      await outcome.catch(() => {});
    },
  };
}
