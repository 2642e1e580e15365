import type { Writable } from 'node:stream';
// ISql: a plain client, a reserved connection or a transaction.
import type { ISql } from 'postgres';

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
 */
export async function openCopyIn(sql: ISql, statement: string): Promise<CopyIn> {
  const query = sql.unsafe(statement);
  const pending = query as unknown as { resolve(value: unknown): void; reject(error: unknown): void };
  let stream: Writable | undefined;
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
  return {
    write(chunk) {
      if (failure) throw failure;
      if (writable.write(chunk)) return;
      return new Promise<void>((resolve, reject) => {
        const drained = (): void => resolve();
        writable.once('drain', drained);
        // A Writable that is ending emits no 'drain' (Node's afterWrite): a write the tar reader
        // made just before the entry's end() waits for the COPY's outcome instead.
        outcome.then(
          () => {
            writable.off('drain', drained);
            resolve();
          },
          (error: unknown) => {
            writable.off('drain', drained);
            reject(error as Error);
          },
        );
      });
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
