import type { ReservedSql, Sql } from 'postgres';
import { holdConnection, rollBackAndRelease } from '../clients/transaction';
import type { HeldConnection } from '../clients/transaction';
import { isSnapshotGone, RunSnapshotGoneError } from './run-snapshot';

/**
 * Session settings for the snapshot. Each makes the CSV the same whatever the server's or
 * database's defaults: timestamptz printed in UTC (every value carries its offset, so it loads
 * back exactly under any TimeZone), ISO dates (a 'SQL, DMY' default would print 01/02/2020),
 * intervals in the style COPY FROM reads, and floats with every digit (servers before 12 round
 * them unless extra_float_digits is raised). And every row or an error: with row_security off (as
 * pg_dump sets it), a table whose row-level security would hide rows from the role fails its
 * COPY, naming the table, instead of being exported as the role sees it. SET LOCAL ends with the
 * transaction.
 */
const SNAPSHOT_SETTINGS = [
  "SET LOCAL TimeZone = 'UTC'",
  "SET LOCAL DateStyle = 'ISO, YMD'",
  "SET LOCAL IntervalStyle = 'postgres'",
  'SET LOCAL extra_float_digits = 3',
  'SET LOCAL row_security = off',
];

const BEGIN = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

/**
 * Connections of the pool, each in a read-only transaction that imports the run's snapshot (SET
 * TRANSACTION SNAPSHOT: see run-snapshot.ts, which the coordinator holds), so tables read on any of
 * them, in any step of the run, agree as if read in one transaction. A snapshot that cannot be
 * imported is RunSnapshotGoneError, never replaced by one of this step's own. Reserved
 * connections, not sql.begin: the transactions must be open at once and end together.
 */
export class SnapshotConnections {
  /** The connections in the order they were opened (a Map keeps it). */
  private readonly held = new Map<ReservedSql, HeldConnection>();
  /** Each connection's server process, to cancel what it runs (cancelRunning). */
  private readonly pids: number[] = [];

  constructor(
    private readonly sql: Sql,
    private readonly run: { runId: string; snapshotId: string },
  ) {}

  /** Opens one more connection in the run's snapshot. */
  async join(): Promise<ReservedSql> {
    const connection = await this.reserve();
    const [{ pid } = { pid: 0 }] = await connection<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
    this.pids.push(pid);
    await connection.unsafe(BEGIN);
    // Identifiers pg_export_snapshot returns are like 00000003-0000001B-1: nothing to escape.
    await connection.unsafe(`SET TRANSACTION SNAPSHOT '${this.run.snapshotId.replaceAll("'", "''")}'`).catch((error: unknown) => {
      if (isSnapshotGone(error)) throw new RunSnapshotGoneError(this.run.runId, (error as Error).message);
      throw error;
    });
    for (const setting of SNAPSHOT_SETTINGS) await connection.unsafe(setting);
    return connection;
  }

  /** Throws if the server ended this connection (its transaction, and snapshot, are gone). */
  assertOpen(connection: ReservedSql): void {
    if (this.held.get(connection)?.isClosed()) throw new Error('The database connection was closed during the export (CONNECTION_CLOSED)');
  }

  /** Commits every transaction (read-only: nothing to keep, only the snapshot to let go). */
  async commit(): Promise<void> {
    for (const connection of this.held.keys()) {
      this.assertOpen(connection);
      await connection.unsafe('COMMIT');
    }
  }

  /**
   * Cancels, on the server, whatever statement each connection is running: a COPY, or a catalog
   * read waiting for a table another session has locked (the run was cancelled). From another
   * connection of the pool; never rejects.
   */
  async cancelRunning(): Promise<void> {
    if (this.pids.length === 0) return;
    await this.sql`SELECT pg_cancel_backend(pid) FROM unnest(${this.pids}::int[]) AS pid`.catch(() => {});
  }

  /** Rolls every transaction back and gives the connections back to the pool (see rollBackAndRelease). Never rejects. */
  async release(): Promise<void> {
    const held = [...this.held.values()];
    this.held.clear();
    await Promise.all(held.map((connection) => rollBackAndRelease(connection)));
  }

  private async reserve(): Promise<ReservedSql> {
    const held = await holdConnection(this.sql);
    this.held.set(held.connection, held);
    return held.connection;
  }
}
