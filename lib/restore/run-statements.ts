import type { ReservedSql, Sql } from 'postgres';
import { holdConnection, inTransaction, rollBackAndRelease } from '../clients/transaction';
import type { HeldConnection } from '../clients/transaction';
import { quoteIdentifier } from '../export/quote-identifier';
import { describeFailure, RestoreCannotRunError, RestoreRefusedError } from './restore-errors';

/** Schemas a restore builds out of sight, and those it moves the old ones to before dropping them. */
export const STAGING_PREFIX = 'waj_restore_';
export const RETIRED_PREFIX = 'waj_retired_';

/** The cause of a failure on a connection found closed: what postgres.js says of one. */
export const connectionClosed = (): Error => Object.assign(new Error('closed by the server or the network'), { code: 'CONNECTION_CLOSED' });

/** Runs statements in order; a failure names what was being done and the statement's start. */
export async function runStatements(held: HeldConnection, what: string, statements: string[]): Promise<void> {
  for (const statement of statements) {
    // A write to a connection the server has ended crashes postgres.js (clients/transaction.ts).
    if (held.isClosed()) throw new RestoreRefusedError(`${what}: the connection to the target was lost`, { cause: connectionClosed() });
    try {
      // Foreign keys built at once lock both their tables: two that refer to each other can deadlock
      // (40P01, one of them rolled back): that statement is tried again.
      for (let attempt = 1; ; attempt += 1) {
        try {
          await held.connection.unsafe(statement);
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== '40P01' || attempt >= 5 || held.isClosed()) throw error;
        }
      }
    } catch (error) {
      const shown = statement.length > 160 ? `${statement.slice(0, 160)}...` : statement;
      throw new RestoreRefusedError(`${what}: the target refused ${JSON.stringify(shown)}: ${describeFailure(error)}`, { cause: error });
    }
  }
}

/** Runs `work` over `items`, `parallelism` at once, each on a reserved connection; the first failure stops the rest from starting. */
export async function inParallel<T>(sql: Sql, parallelism: number, items: T[], work: (connection: HeldConnection, item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    let held: HeldConnection | undefined;
    try {
      held = await holdConnection(sql);
      while (!failure && next < items.length) {
        signal?.throwIfAborted();
        const item = items[next++]!;
        await work(held, item);
      }
      held.connection.release();
    } catch (error) {
      failure ??= { error };
      if (held) await rollBackAndRelease(held, error);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, items.length) }, worker));
  if (failure) throw failure.error;
}

/**
 * Drops schemas a restore built (or retired), waiting at most `waitMs` (30 s) for readers still on
 * their tables. Never throws: returns why it could not, or undefined once dropped.
 *
 * DROP ... CASCADE takes its locks one table at a time, waiting for each while holding the last:
 * a reader whose plan was made before the swap can hold one old table while it asks for another,
 * and the two deadlock (the server then ends one of them, perhaps the reader's query). So every
 * table the DROP will lock (the schemas' own, and those their foreign keys join) is locked first
 * in one LOCK ... NOWAIT: all at once or none, tried again every 100 ms, never waiting while it
 * holds one, and never queued in front of a reader. Anything else fails the attempt; it is tried
 * again up to three times (a connection the server had just ended).
 */
export async function dropSchemas(sql: Sql, schemas: string[], { waitMs = 30_000 }: { waitMs?: number } = {}): Promise<string | undefined> {
  if (schemas.length === 0) return undefined;
  const deadline = Date.now() + waitMs;
  for (let failures = 0; ; ) {
    try {
      await inTransaction(sql, async (tx) => {
        const tables = await tx<{ name: string }[]>`
          WITH own AS (
            SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY(${schemas}::text[]) AND c.relkind IN ('r', 'p', 'v'))
          , joined AS (
            SELECT oid FROM own
            UNION
            SELECT unnest(ARRAY[conrelid, confrelid]) FROM pg_catalog.pg_constraint
            WHERE contype = 'f' AND (conrelid IN (SELECT oid FROM own) OR confrelid IN (SELECT oid FROM own)))
          -- A table this role may not lock so (a partner it only REFERENCES) is left to the DROP's own wait.
          SELECT oid::regclass::text AS name FROM joined WHERE has_table_privilege(oid, 'UPDATE, DELETE, TRUNCATE')`;
        if (tables.length > 0) await tx.unsafe(`LOCK TABLE ${tables.map((t) => t.name).join(', ')} IN ACCESS EXCLUSIVE MODE NOWAIT`);
        await tx.unsafe(`SET LOCAL lock_timeout = '${Math.max(1, deadline - Date.now())}ms'`);
        await tx.unsafe(`DROP SCHEMA IF EXISTS ${schemas.map((schema) => quoteIdentifier(schema)).join(', ')} CASCADE`);
      });
      return undefined;
    } catch (error) {
      const busy = (error as { code?: string }).code === LOCK_NOT_AVAILABLE;
      if (busy ? Date.now() >= deadline : ++failures >= 3) return describeFailure(error);
      if (busy) await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** SQLSTATE of a lock not had at once (NOWAIT) or within lock_timeout. */
const LOCK_NOT_AVAILABLE = '55P03';

/** A prefix as a LIKE pattern's start: its underscores are letters, not wildcards. */
const likePrefix = (prefix: string) => prefix.replaceAll('_', '\\_');

/** Staging and retired schemas in the target. */
async function findLeftovers(control: ReservedSql): Promise<string[]> {
  const rows = await control<{ name: string }[]>`
    SELECT nspname AS name FROM pg_catalog.pg_namespace
    WHERE nspname LIKE ${`${likePrefix(STAGING_PREFIX)}%`} OR nspname LIKE ${`${likePrefix(RETIRED_PREFIX)}%`} ORDER BY 1`;
  return rows.map((row) => row.name);
}

/** Session-level advisory lock key: one restore at a time builds in a database (hashtext of the project's name). */
const RESTORE_LOCK = "hashtext('water-abstraction-jobs restore')";

/**
 * Takes the restore's lock on the held connection (or throws RestoreCannotRunError: another
 * restore is building in this database), then drops what earlier restores left: under the lock,
 * no restore is using them. Resolves with the schemas dropped.
 */
export async function lockTargetAndRemoveLeftovers(held: HeldConnection): Promise<string[]> {
  const control = held.connection;
  const [{ locked } = { locked: false }] = await control.unsafe<{ locked: boolean }[]>(`SELECT pg_try_advisory_lock(${RESTORE_LOCK}) AS locked`);
  if (!locked) throw new RestoreCannotRunError('Another restore into this database is running: wait for it to end');
  const leftovers = await findLeftovers(control);
  for (const name of leftovers) await control.unsafe(`DROP SCHEMA ${quoteIdentifier(name)} CASCADE`);
  return leftovers;
}

/** Lets the restore's lock go and gives the connection back; if the server ended it, the lock went with it. Never throws. */
export async function unlockTarget(held: HeldConnection | undefined): Promise<void> {
  if (!held || held.isClosed()) return;
  await held.connection.unsafe(`SELECT pg_advisory_unlock(${RESTORE_LOCK})`).catch(() => {});
  if (!held.isClosed()) held.connection.release();
}
