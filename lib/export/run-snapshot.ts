import type { Sql } from 'postgres';
import { holdConnection, rollBackAndRelease } from '../clients/transaction';

/** The one moment an export run reads: the snapshot its coordinator exported, and when it was taken. */
export interface RunSnapshot {
  /** What pg_export_snapshot() returned, e.g. `00000003-0000001B-1`. */
  id: string;
  /** The exporting transaction's start (now() in it), ISO 8601 in UTC. */
  asOf: string;
}

/** The coordinator's transaction, held open so that the run's steps can import its snapshot. */
export interface HeldRunSnapshot {
  snapshot: RunSnapshot;
  /** True once the server ended the holding connection: the snapshot can no longer be imported. */
  isLost(): boolean;
  /** Ends the transaction (the snapshot with it) and gives the connection back. Never rejects. */
  release(): Promise<void>;
}

/**
 * The snapshot cannot be imported: the transaction that exported it has ended (the coordinator
 * let it go, crashed, timed out, or its backend was terminated). Never answered by a snapshot of
 * the step's own: that would be another moment than the run's other tarballs.
 */
export class RunSnapshotGoneError extends Error {
  override readonly name = 'RunSnapshotGoneError';
  /** No attempt of the step can succeed any more: Lambda's retry is not waited for. */
  readonly final = true;

  constructor(runId: string, detail: string) {
    super(`The export run's snapshot is gone (${detail}): this step cannot read the moment the run's other schemas were read in. Start a new export run (run ${runId}).`);
  }
}

/**
 * The holder's application_name in pg_stat_activity. Short: the server cuts application_name at
 * 63 bytes, and "water-abstraction-jobs export <uuid> snapshot" would lose its end.
 */
export function snapshotHolderName(runId: string): string {
  return `waj export snapshot ${runId}`;
}

/**
 * Opens the run's snapshot: a REPEATABLE READ, READ ONLY transaction on a connection of its own,
 * whose snapshot pg_export_snapshot() makes importable by other sessions for as long as the
 * transaction lasts. The server's timeouts are switched off for this transaction alone
 * (statement_timeout, idle_in_transaction_session_timeout): it is idle in transaction by design
 * while the steps import it. `application_name` names the run in pg_stat_activity.
 */
export async function holdRunSnapshot(sql: Sql, runId: string): Promise<HeldRunSnapshot> {
  const held = await holdConnection(sql);
  const { connection } = held;
  try {
    await connection.unsafe('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await connection.unsafe('SET LOCAL statement_timeout = 0');
    await connection.unsafe('SET LOCAL idle_in_transaction_session_timeout = 0');
    await connection.unsafe(`SET LOCAL application_name = '${snapshotHolderName(runId)}'`);
    // The first query takes the transaction's snapshot; now() is the transaction's start.
    const [row] = await connection.unsafe<[{ id: string; as_of: Date }]>('SELECT pg_export_snapshot() AS id, now() AS as_of');
    const snapshot = { id: row.id, asOf: row.as_of.toISOString() };
    let released: Promise<void> | undefined;
    return {
      snapshot,
      isLost: held.isClosed,
      release: () => (released ??= rollBackAndRelease(held)),
    };
  } catch (error) {
    await rollBackAndRelease(held, error);
    throw error;
  }
}

const INVALID_PARAMETER_VALUE = '22023';
const OBJECT_NOT_IN_PREREQUISITE_STATE = '55000';

/**
 * Whether SET TRANSACTION SNAPSHOT failed because the snapshot no longer exists: PostgreSQL
 * answers "invalid snapshot identifier" (22023) once the exporting transaction has ended and its
 * snapshot file is gone, or "could not import the requested snapshot" (55000) when the
 * exporting transaction ended while the file was being read.
 */
export function isSnapshotGone(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (code === INVALID_PARAMETER_VALUE || code === OBJECT_NOT_IN_PREREQUISITE_STATE) && typeof message === 'string' && /snapshot/i.test(message);
}
