import type { ReservedSql, Sql } from 'postgres';
import { copyInStatement } from '../definition/definition-statements';
import type { SchemaNames, TableDefinition } from '../definition/schema-definition';
import { tableEntryName } from '../export/archive-entry-name';
import { quoteIdentifier } from '../export/quote-identifier';
import { readExportTarball } from '../verification/read-export-tarball';
import type { ArchivedMetadata, CsvEntrySink } from '../verification/read-export-tarball';
import type { ArchivedCsv, VerificationProblem } from '../verification/compare-with-manifest';
import { holdConnection } from '../clients/transaction';
import type { HeldConnection } from '../clients/transaction';
import { openCopyIn } from './open-copy-in';
import type { CopyIn } from './open-copy-in';
import type { TarballDefinition } from './read-tarball-definition';
import { describeFailure, RestoreRefusedError } from './restore-errors';
import { connectionClosed } from './run-statements';

export interface LoadedTable {
  schema: string;
  table: string;
  rows: number;
  bytes: number;
  timeTakenMs: number;
}

export interface LoadProgress {
  onTableLoaded?: (table: LoadedTable) => void;
  /** CSV bytes loaded so far, over every tarball. */
  onBytes?: (bytes: number) => void;
}

/**
 * Work a reader does when no tarball is left for it alone, rather than inflate one another reader
 * is loading to find a table no one has claimed (build-while-loading.ts: keys and indexes of
 * tables already loaded).
 */
export interface WorkBetweenLoads {
  /** A table's COPY has committed. */
  tableLoaded(table: LoadedTable): void;
  /** A piece of work that is ready, to run on a reader's connection (it never throws), or none. */
  take(): ((connection: HeldConnection) => Promise<void>) | undefined;
}

/** A connection loading tables one after another. */
interface ReaderConnection {
  connection: ReservedSql;
  held: HeldConnection;
  pid: number;
  /** Settles once the table last started on it has ended, either way. */
  idle: Promise<void>;
  copy?: CopyIn;
  /** Running a piece of WorkBetweenLoads. */
  building?: boolean;
}

/**
 * Leaves a failed reader's connection with nothing open: its COPY abandoned and its transaction
 * rolled back, so its locks on the staging tables go and they can be dropped. A connection that
 * cannot say ROLLBACK within seconds is ended on the server.
 */
async function rollBack(sql: Sql, reader: ReaderConnection): Promise<void> {
  // Ended by the server: its transaction and locks went with it (and a write would crash postgres.js).
  if (reader.held.isClosed()) return;
  await reader.copy?.abort(new Error('The restore failed'));
  if (reader.held.isClosed()) return;
  const rolledBack = await Promise.race([
    reader.connection.unsafe('ROLLBACK').then(() => true, () => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref()),
  ]);
  if (!rolledBack && reader.pid) await sql`SELECT pg_terminate_backend(${reader.pid})`.catch(() => {});
}

/** One tarball after every reader of it has reached its end: what was counted, to compare with its manifest. */
export interface LoadedTarball {
  tarball: TarballDefinition;
  csvFiles: ArchivedCsv[];
  manifest?: ArchivedMetadata;
  definitionFiles: ArchivedMetadata[];
  problems: VerificationProblem[];
  loaded: LoadedTable[];
}

/** A tarball being read: the CSVs some reader has claimed, and what its readers found. */
class TarballLoad {
  readonly claimed = new Set<string>();
  readonly csvFiles: ArchivedCsv[] = [];
  readonly loaded: LoadedTable[] = [];
  readonly problems: VerificationProblem[] = [];
  readonly tablesByFile: Map<string, TableDefinition>;
  manifest?: ArchivedMetadata;
  definitionFiles: ArchivedMetadata[] = [];
  readers = 0;
  /** A reader has reached the end: nothing is left unclaimed for a new reader to take. */
  readToEnd = false;

  constructor(readonly tarball: TarballDefinition) {
    const { schema, tables } = tarball.definition;
    this.tablesByFile = new Map(tables.map((table) => [tableEntryName(schema, table.name), table]));
  }
}

/**
 * Loads every tarball's CSVs into the tables being built (`names`: each schema's staging name),
 * `parallelism` COPYs at once, checking each CSV as it passes (read-export-tarball.ts: the
 * verifier's own counting) and each COPY's row count against it.
 *
 * A tarball is one stream, its tables one after another. To load several tables of one tarball at
 * once, a reader with nothing left to start opens another stream of a tarball still being loaded,
 * passes over (unread, unhashed) what another reader has claimed, and claims the first table no
 * one has: the tables of a big schema are shared out, at the cost of inflating its stream again
 * (gunzip runs several times faster than a COPY loads). Each table is loaded in a transaction that
 * truncates it first, so `COPY ... FREEZE` writes its rows frozen, sparing every later reader the
 * hint-bit writes (pg_restore's parallel mode truncates before loading for the same kind of reason).
 *
 * With `between`, a reader that has no tarball of its own left runs its ready work first, and
 * once nothing is left to read, waits for more while other readers still load.
 *
 * Throws RestoreRefusedError naming the table when a row will not load or the connection fails;
 * other COPYs are abandoned (and work between loads cancelled) first. What was loaded stays in the
 * staging schemas: dropping them is the caller's.
 */
export async function loadTarballs(
  sql: Sql,
  tarballs: TarballDefinition[],
  names: SchemaNames,
  parallelism: number,
  progress: LoadProgress = {},
  signal?: AbortSignal,
  between?: WorkBetweenLoads,
): Promise<LoadedTarball[]> {
  const loads = tarballs.map((tarball) => new TarballLoad(tarball));
  // Largest tarballs first (pg_restore starts on its largest tables first): a big one started last
  // is loaded by one connection while the others wait, or shared out by inflating it again.
  const largestFirst = [...loads].sort((a, b) => (b.tarball.source.bytes ?? 0) - (a.tarball.source.bytes ?? 0));
  /** Readers reading a tarball now: while any is, tables are still being loaded. */
  let reading = 0;
  /** Settles at the next table loaded, tarball read or failure (always pending until then): a waiting reader looks again. */
  let changed: Promise<void>;
  let markChanged = (): void => {};
  const signalChange = (): void => {
    markChanged();
    changed = new Promise<void>((resolve) => (markChanged = resolve));
  };
  signalChange();
  const stop = new AbortController();
  signal?.addEventListener('abort', () => stop.abort(signal.reason), { once: true });
  let bytesDone = 0;
  const inFlight = new Map<object, number>();
  const reportBytes = (): void => progress.onBytes?.(bytesDone + [...inFlight.values()].reduce((a, b) => a + b, 0));

  const readOnce = async (load: TarballLoad, reader: ReaderConnection): Promise<void> => {
    const stream = await load.tarball.source.open();
    const contents = await readExportTarball(stream, {
      onDefinition(bytes) {
        if (!bytes.equals(load.tarball.bytes)) throw new RestoreRefusedError(`${load.tarball.source.label}: its definition changed while it was being restored`);
      },
      onCsv({ file }) {
        if (stop.signal.aborted) throw stop.signal.reason;
        if (load.claimed.has(file)) return 'skip';
        load.claimed.add(file);
        const table = load.tablesByFile.get(file);
        // Not in the definition: still counted, so the manifest check names it; nothing to load into.
        if (!table) return undefined;
        // A partitioned parent's CSV repeats its partitions' rows: checked, not loaded.
        if (table.partitionKey !== null) return undefined;
        return tableSink(reader, load, table);
      },
    });
    if (contents.broken) throw new RestoreRefusedError(`${load.tarball.source.label}: ${contents.broken.message}`);
    if (!load.readToEnd) {
      load.readToEnd = true;
      load.manifest = contents.manifest;
      load.definitionFiles = [contents.definition, contents.schemaSql].filter((entry) => entry !== undefined);
      load.problems.push(...contents.problems);
    }
    load.csvFiles.push(...contents.csvFiles);
  };

  const tableSink = (reader: ReaderConnection, load: TarballLoad, table: TableDefinition): CsvEntrySink => {
    const { connection } = reader;
    const { schema } = load.tarball.definition;
    // The tar reader starts the next entry before this reader's last COPY has ended (both can be
    // in one chunk): the connection takes one statement at a time, so each table waits for the last.
    const previous = reader.idle;
    let markIdle!: () => void;
    reader.idle = new Promise<void>((resolve) => (markIdle = resolve));
    const started = performance.now();
    const key = {};
    let bytes = 0;
    let copy: CopyIn | undefined;
    const what = `Loading ${quoteIdentifier(schema)}.${quoteIdentifier(table.name)}`;
    const fail = (error: unknown): never => {
      if (error instanceof RestoreRefusedError) throw error;
      throw new RestoreRefusedError(`${what}: ${describeFailure(error)}`, { cause: error });
    };
    const opening = (async () => {
      await previous;
      if (stop.signal.aborted) throw stop.signal.reason;
      if (reader.held.isClosed()) throw connectionClosed();
      const staging = `${quoteIdentifier(names.get(schema) ?? schema)}.${quoteIdentifier(table.name)}`;
      await connection.unsafe('BEGIN');
      await connection.unsafe(`TRUNCATE ONLY ${staging}`);
      copy = reader.copy = await openCopyIn(connection, copyInStatement(load.tarball.definition, table, names, { freeze: true }));
    })().catch(fail);
    opening.catch(() => markIdle());
    return {
      // The COPY's count of the CSV's rows stands for the reader's (read-export-tarball.ts).
      countsRows: true,
      async write(chunk) {
        await opening;
        bytes += chunk.length;
        inFlight.set(key, bytes);
        reportBytes();
        // In a try: write() throws at once once the COPY has failed, which .catch() on its result would miss.
        try {
          await copy!.write(chunk);
        } catch (error) {
          fail(error);
        }
      },
      async end() {
        await opening;
        let loadedRows: number;
        try {
          loadedRows = await copy!.end();
          reader.copy = undefined;
          if (reader.held.isClosed()) throw connectionClosed();
          await connection.unsafe('COMMIT');
        } catch (error) {
          fail(error);
        } finally {
          markIdle();
        }
        inFlight.delete(key);
        bytesDone += bytes;
        const loaded = { schema, table: table.name, rows: loadedRows!, bytes, timeTakenMs: Math.round(performance.now() - started) };
        load.loaded.push(loaded);
        progress.onTableLoaded?.(loaded);
        between?.tableLoaded(loaded);
        signalChange();
        return loaded.rows;
      },
    };
  };

  const runReader = async (): Promise<void> => {
    const held = await holdConnection(sql);
    const { connection } = held;
    const [{ pid } = { pid: 0 }] = await connection<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
    const reader: ReaderConnection = { connection, held, pid, idle: Promise.resolve() };
    const abandon = (): void => {
      void reader.copy?.abort(new Error('Another table of the restore failed'));
      // An index being built would hold the failure back for as long as it takes.
      if (reader.building && pid) void sql`SELECT pg_cancel_backend(${pid})`.catch(() => {});
      signalChange();
    };
    stop.signal.addEventListener('abort', abandon, { once: true });
    try {
      while (!stop.signal.aborted) {
        const fresh = largestFirst.find((load) => load.readers === 0 && !load.readToEnd);
        const work = fresh ? undefined : between?.take();
        if (work) {
          reader.building = true;
          try {
            await work(held);
          } finally {
            reader.building = false;
          }
          continue;
        }
        // Else a tarball another reader is reading (the fewest readers first), inflated again.
        const load = fresh ?? largestFirst.filter((l) => !l.readToEnd).sort((a, b) => a.readers - b.readers)[0];
        if (load) {
          load.readers += 1;
          reading += 1;
          try {
            await readOnce(load, reader);
          } finally {
            load.readers -= 1;
            reading -= 1;
            signalChange();
          }
          continue;
        }
        // Nothing left to read: other readers' tables may still bring work.
        if (between && reading > 0) {
          await changed;
          continue;
        }
        break;
      }
    } catch (error) {
      if (!stop.signal.aborted) stop.abort(error);
      await rollBack(sql, reader);
      throw error;
    } finally {
      stop.signal.removeEventListener('abort', abandon);
      if (!held.isClosed()) connection.release();
    }
  };

  const results = await Promise.allSettled(Array.from({ length: Math.max(1, parallelism) }, () => runReader()));
  if (stop.signal.aborted) throw stop.signal.reason instanceof Error ? stop.signal.reason : new Error(String(stop.signal.reason));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return loads.map((load) => ({
    tarball: load.tarball,
    csvFiles: load.csvFiles,
    manifest: load.manifest,
    definitionFiles: load.definitionFiles,
    problems: load.problems,
    loaded: load.loaded,
  }));
}
