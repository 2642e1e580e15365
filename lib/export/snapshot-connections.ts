import type { ReservedSql, Sql } from 'postgres';
import { holdConnection, rollBackAndRelease } from '../clients/transaction';
import type { HeldConnection } from '../clients/transaction';

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
  /** The connections in the order they were opened (a Map keeps it). */
  private readonly held = new Map<ReservedSql, HeldConnection>();
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
    if (this.held.get(connection)?.isClosed()) throw new Error('The database connection was closed during the export (CONNECTION_CLOSED)');
  }

  /** Commits every transaction (read-only: nothing to keep, only the snapshot to let go). */
  async commit(): Promise<void> {
    for (const connection of this.held.keys()) {
      this.assertOpen(connection);
      await connection.unsafe('COMMIT');
    }
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
