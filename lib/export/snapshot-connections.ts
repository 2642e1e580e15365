import type { ReservedSql, Sql } from 'postgres';

/**
 * Session settings for the snapshot. Each makes the CSV the same whatever the server's or
 * database's defaults: timestamptz printed in UTC (every value carries its offset, so it loads
 * back exactly under any TimeZone), ISO dates (a 'SQL, DMY' default would print 01/02/2020),
 * intervals in the style COPY FROM reads, and floats with every digit (servers before 12 round
 * them unless extra_float_digits is raised). SET LOCAL ends with the transaction.
 */
const SNAPSHOT_SETTINGS = [
  "SET LOCAL TimeZone = 'UTC'",
  "SET LOCAL DateStyle = 'ISO, YMD'",
  "SET LOCAL IntervalStyle = 'postgres'",
  'SET LOCAL extra_float_digits = 3',
];

const BEGIN = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

/**
 * Connections of the pool, each in a read-only transaction, that all see one snapshot: the first
 * exports its snapshot (pg_export_snapshot) and the others adopt it (SET TRANSACTION SNAPSHOT),
 * so tables read on any of them agree, as if read in one transaction. Reserved connections, not
 * sql.begin: the transactions must be open at once and end together.
 */
export class SnapshotConnections {
  readonly connections: ReservedSql[] = [];
  private readonly closed = new Set<ReservedSql>();
  private snapshotId = '';

  constructor(private readonly sql: Sql) {}

  /** Opens the first connection and its snapshot; returns it. */
  async open(): Promise<ReservedSql> {
    const first = await this.reserve();
    await first.unsafe(BEGIN);
    const [row] = await first.unsafe<[{ snapshot: string }]>('SELECT pg_export_snapshot() AS snapshot');
    this.snapshotId = row.snapshot;
    for (const setting of SNAPSHOT_SETTINGS) await first.unsafe(setting);
    return first;
  }

  /** Opens one more connection in the same snapshot. */
  async join(): Promise<ReservedSql> {
    if (!this.snapshotId) throw new Error('open() first: there is no snapshot to join');
    const connection = await this.reserve();
    await connection.unsafe(BEGIN);
    // Identifiers pg_export_snapshot returns are like 00000003-0000001B-1: nothing to escape.
    await connection.unsafe(`SET TRANSACTION SNAPSHOT '${this.snapshotId.replaceAll("'", "''")}'`);
    for (const setting of SNAPSHOT_SETTINGS) await connection.unsafe(setting);
    return connection;
  }

  /** Throws if the server ended this connection (its transaction, and snapshot, are gone). */
  assertOpen(connection: ReservedSql): void {
    if (this.closed.has(connection)) throw new Error('The database connection was closed during the export (CONNECTION_CLOSED)');
  }

  /** Commits every transaction (read-only: nothing to keep, only the snapshot to let go). */
  async commit(): Promise<void> {
    for (const connection of this.connections) {
      this.assertOpen(connection);
      await connection.unsafe('COMMIT');
    }
  }

  /**
   * Rolls every transaction back and gives the connections back to the pool. Never rejects.
   * A connection the server ended is neither queried nor released: postgres.js 3.4 would write
   * to its null socket from a setImmediate (an uncaught TypeError, "reading 'write'") and put the
   * dead connection back among the open ones; the pool has already marked it closed and opens a
   * new one when needed.
   */
  async release(): Promise<void> {
    await Promise.all(
      this.connections.splice(0).map(async (connection) => {
        if (this.closed.has(connection)) return;
        await connection.unsafe('ROLLBACK').catch(() => {});
        if (!this.closed.has(connection)) connection.release();
      }),
    );
  }

  private async reserve(): Promise<ReservedSql> {
    const connection = await this.sql.reserve();
    this.connections.push(connection);
    // postgres.js tells nobody when a reserved connection closes; its internal `onexecute` hook
    // (the one sql.begin uses to learn its connection) hands us the connection object, whose
    // `onclose` the pool calls once when the socket closes.
    const probe = () =>
      connection.unsafe('SELECT 1', [], {
        onexecute: (internal: { onclose?: () => void }) => {
          internal.onclose = () => this.closed.add(connection);
          return true;
        },
      } as never);
    try {
      await probe();
    } catch (error) {
      // postgres.js 3.4 keeps the FATAL error (57P01 and kin) that a connection got when the
      // server shut down and hands it to the first query after the connection reconnects. That
      // query is this probe: try once more, so a run after a restart or failover is not failed
      // by the one before it.
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('57P') || this.closed.has(connection)) throw error;
      await probe();
    }
    return connection;
  }
}
