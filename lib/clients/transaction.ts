import type { ReservedSql, Sql } from 'postgres';

/** A connection held apart from the pool, and whether the server has ended it. */
export interface HeldConnection {
  connection: ReservedSql;
  /** True once the connection's socket has closed (the server ended it, or the network did). */
  isClosed(): boolean;
}

/** Errors that mean the connection itself is gone: the server ended it, or it could not be reached. */
export function isConnectionLost(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return false;
  // 57P01-57P05: shut down, crashed, terminated, idle timeouts (FATAL, the server closes the
  // connection); 08xxx: connection exceptions; postgres.js's and Node's own.
  return (
    code.startsWith('57P') ||
    code.startsWith('08') ||
    ['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code)
  );
}

/**
 * Takes a connection from the pool for the caller alone (sql.reserve), knowing when it closes.
 *
 * postgres.js 3.4 (porsager/postgres#1208, #1066) crashes the process when a query is written to
 * a connection whose socket has closed: the write happens in a setImmediate callback, on a null
 * socket, an uncaught TypeError ("reading 'write'"). sql.begin does that itself: when a query of
 * the transaction fails because the server ended the connection (pg_terminate_backend, a
 * failover, a restart), its ROLLBACK is such a write. So transactions here are explicit, on a
 * connection whose closing is watched, and nothing is written to it once it has closed.
 */
export async function holdConnection(sql: Sql): Promise<HeldConnection> {
  const connection = await sql.reserve();
  let closed = false;
  // postgres.js tells nobody when a reserved connection closes; its internal `onexecute` hook
  // (the one sql.begin uses to learn its connection) hands us the connection object, whose
  // `onclose` the pool calls once when the socket closes.
  const probe = () =>
    connection.unsafe('SELECT 1', [], {
      onexecute: (internal: { onclose?: () => void }) => {
        internal.onclose = () => (closed = true);
        return true;
      },
    } as never);
  try {
    await probe().catch((error: unknown) => {
      // postgres.js 3.4 keeps the FATAL error (57P01 and kin) that a connection got when the
      // server shut down and hands it to the first query after the connection reconnects. That
      // query is this probe: try once more, so a run after a restart or failover is not failed
      // by the one before it.
      const code = (error as { code?: unknown }).code;
      if (closed || typeof code !== 'string' || !code.startsWith('57P')) throw error;
      return probe();
    });
  } catch (error) {
    // Back to the pool unless it closed (the pool has dropped it then), the retry's failure too.
    if (!closed) connection.release();
    throw error;
  }
  return { connection, isClosed: () => closed };
}

/**
 * Gives a held connection back after a failure: rolled back and released if it is still open;
 * left alone if it closed or the failure says it is gone (the server ended the transaction with
 * it, and the pool opens a new connection when one is needed). Never rejects.
 */
export async function rollBackAndRelease({ connection, isClosed }: HeldConnection, failure?: unknown): Promise<void> {
  if (isClosed() || isConnectionLost(failure)) return;
  await connection.unsafe('ROLLBACK').catch(() => {});
  if (!isClosed()) connection.release();
}

/**
 * Runs `work` in a transaction on a connection of its own: committed if it resolves, rolled back
 * if it throws (or nothing, if the connection is gone), and the error rethrown. The one way this
 * project opens a transaction; see holdConnection for why not sql.begin.
 */
export async function inTransaction<T>(sql: Sql, work: (tx: ReservedSql) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const held = await holdConnection(sql);
  let result: T;
  try {
    await held.connection.unsafe(begin);
    result = await work(held.connection);
    await held.connection.unsafe('COMMIT');
  } catch (error) {
    await rollBackAndRelease(held, error);
    throw error;
  }
  held.connection.release();
  return result;
}
