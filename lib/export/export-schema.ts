import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { ReservedSql, Sql } from 'postgres';
import type { S3Client } from '@aws-sdk/client-s3';
import { logger } from '../logger';
import { definitionEntryName, manifestEntryName, schemaSqlEntryName, tableEntryName } from './archive-entry-name';
import { manifestColumns } from '../definition/definition-statements';
import { readSchemaDefinition } from '../definition/read-schema-definition';
import { renderSchemaSql } from '../definition/render-schema-sql';
import { failedStep } from './export-step-error';
import { BLOCKS_IN_FLIGHT } from './gzip-in-blocks';
import { listBaseTables } from './list-base-tables';
import type { BaseTable } from './list-base-tables';
import { startSchemaTarball } from './schema-tarball';
import type { SchemaTarball } from './schema-tarball';
import { RunSnapshotGoneError } from './run-snapshot';
import type { RunSnapshot } from './run-snapshot';
import { SnapshotConnections } from './snapshot-connections';
import { streamTableAsCsv } from './stream-table-as-csv';
import type { CsvSummary } from './stream-table-as-csv';

export interface TableSummary {
  table: string;
  /** The CSV's path inside the tarball, `<schema>/<table>.csv`. */
  file: string;
  rows: number;
  bytes: number;
  sha256: string;
  /**
   * The CSV's columns in its order, with their PostgreSQL types (format_type): for readers other
   * than PostgreSQL. Absent from the manifests of exports made before tarballs carried definitions.
   */
  columns?: { name: string; type: string }[];
}

/** definition.json or schema.sql, as the manifest records it so the verifier checks it too. */
export interface DefinitionFileSummary {
  file: string;
  bytes: number;
  sha256: string;
}

export interface SchemaManifest {
  schema: string;
  /** The export run this tarball belongs to: every tarball of a run names it. */
  runId: string;
  /** The moment the rows show: the run's snapshot (the same in every tarball of the run). */
  asOf: string;
  /** When this tarball was written. */
  exportedAt: string;
  /** The tarball's first entries, `<schema>/definition.json` and `<schema>/schema.sql` (lib/definition); absent before they were. */
  definitionFiles?: DefinitionFileSummary[];
  tables: TableSummary[];
}

export interface SchemaExport {
  tables: TableSummary[];
  compressedBytes: number;
  /** Why the tarball carries no definition (SchemaDefinition.unavailable), when it does not. */
  definitionUnavailable?: string;
}

export interface SchemaExportTarget {
  sql: Sql;
  /**
   * The run's snapshot, which every connection imports (run-snapshot.ts): the run's one moment;
   * and the run's schemas in their configured order, the path the definition is printed under
   * (lib/definition/schema-definition.ts `searchPath`; default: this schema alone).
   */
  run: { runId: string; snapshot: RunSnapshot; schemas?: readonly string[] };
  /** Called once every connection has imported the run's snapshot (the step records it in the ledger). */
  onSnapshotImported?: () => Promise<void>;
  s3: S3Client;
  bucket: string;
  key: string;
  /** User metadata of the uploaded object (the export step sets `run-id` and `schema`). */
  metadata?: Record<string, string>;
  /** An empty folder of this run's own for tables compressed ahead of their turn in the tarball. */
  folder: string;
  onTableDone?: (table: TableSummary) => void;
  /** Hears the CSV bytes read so far of the tables still being read. */
  onTableBytes?: (bytes: number) => void;
  /**
   * Tables read at once, each on a connection of its own (default: the CPUs, as
   * os.availableParallelism() counts them). Never more than the tables, nor than the pool's
   * connections less one, which is left for the run ledger's progress writes.
   */
  parallelism?: number;
  /** Stops the export (its run was cancelled): COPYs cancelled on the server, the upload aborted, the files removed. */
  signal?: AbortSignal;
  /**
   * Asked once everything is read and uploaded, just before the tarball appears at its key (the
   * one step that cannot be undone): a throw stops the export there, as any failure does, with
   * nothing at the key. The step asks the ledger whether its run was cancelled meanwhile.
   */
  beforeCommit?: () => Promise<void>;
}

/**
 * Exports one schema to s3://bucket/key as a .tgz of `<schema>/<table>.csv` files and
 * `<schema>/manifest.json`, every table read in the run's snapshot (imported by up to
 * `parallelism` connections), in the tarball's (name) order.
 *
 * No table is ever staged uncompressed. The table whose turn it is in the tarball streams
 * COPY → gzip → S3 directly; a table read alongside it, ahead of its turn, is compressed into a
 * file of its own and copied into the tarball when its turn comes. At most `parallelism - 1`
 * tables are on disk at once (being staged, waiting, or being copied), so the temporary disk
 * holds at most that many compressed tables: one, with two CPUs. Throws on any failure, after
 * cancelling the other tables' COPYs, aborting the upload and removing the temporary files.
 */
export async function exportSchema(schema: string, target: SchemaExportTarget): Promise<SchemaExport> {
  const { sql, s3, bucket, key, folder, run } = target;
  const exportedAt = new Date();
  const connections = new SnapshotConnections(sql, { runId: run.runId, snapshotId: run.snapshot.id });
  const stop = new AbortController();
  // Cancelled: what runs on the step's connections is cancelled on the server too (a catalog read
  // waits for a locked table as a COPY does), then the export fails and cleans up as on any failure.
  const stopWith = (): void => {
    stop.abort(target.signal!.reason);
    void connections.cancelRunning();
  };
  target.signal?.addEventListener('abort', stopWith, { once: true });
  let tarball: SchemaTarball | undefined;
  try {
    target.signal?.throwIfAborted();
    await mkdir(folder, { recursive: true });
    const reading = <T>(work: Promise<T>): Promise<T> =>
      work.catch((error: unknown) => {
        if (error instanceof RunSnapshotGoneError) throw error;
        throw failedStep(`Reading schema "${schema}" from the database`, error);
      });
    // Every connection imports the snapshot first, so the coordinator can let it go soonest.
    const first = await reading(connections.join());
    const baseTables = await reading(listBaseTables(first, schema));
    if (baseTables.length === 0) throw new Error(`Schema "${schema}" has no base tables (or does not exist)`);
    const searchPath = [schema, ...(run.schemas ?? []).filter((other) => other !== schema)];
    const definition = await reading(readSchemaDefinition(first, schema, searchPath));
    // The rows are the export's job; a definition it cannot carry is said, not a reason to fail.
    if (definition.unavailable !== undefined) logger.warn('Schema exported without its definition; a restore will refuse it', { schema, reason: definition.unavailable });
    const columnsOf = new Map(definition.tables.map((table) => [table.name, manifestColumns(table)]));
    const definitionEntries = [
      { file: definitionEntryName(schema), content: Buffer.from(`${JSON.stringify(definition, null, 2)}\n`) },
      { file: schemaSqlEntryName(schema), content: Buffer.from(renderSchemaSql(definition)) },
    ];
    const parallelism = Math.max(1, Math.min(target.parallelism ?? availableParallelism(), baseTables.length, sql.options.max - 1));
    const others: ReservedSql[] = [];
    for (let i = 1; i < parallelism; i += 1) others.push(await reading(connections.join()));
    await target.onSnapshotImported?.();
    stop.signal.throwIfAborted();

    tarball = await startSchemaTarball(s3, { bucket, key, metadata: target.metadata }, { date: exportedAt });
    // First, so a restore creates the tables before their rows stream past.
    for (const { file, content } of definitionEntries) await tarball.addBuffer(content, file);
    const tables = await new TableQueue(schema, baseTables, tarball, {
      ...target,
      folder,
      signal: stop.signal,
      columnsOf,
      assertOpen: (connection) => connections.assertOpen(connection),
    }).run([first, ...others]);
    await reading(connections.commit());
    const manifest: SchemaManifest = {
      schema,
      runId: run.runId,
      asOf: run.snapshot.asOf,
      exportedAt: exportedAt.toISOString(),
      definitionFiles: definitionEntries.map(({ file, content }) => ({ file, bytes: content.length, sha256: createHash('sha256').update(content).digest('hex') })),
      tables,
    };
    await tarball.addBuffer(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), manifestEntryName(schema));
    const { compressedBytes } = await tarball.finish(async () => {
      stop.signal.throwIfAborted();
      await target.beforeCommit?.();
    });
    return { tables, compressedBytes, ...(definition.unavailable !== undefined && { definitionUnavailable: definition.unavailable }) };
  } catch (error) {
    stop.abort(error);
    await tarball?.cancel();
    throw error;
  } finally {
    target.signal?.removeEventListener('abort', stopWith);
    await connections.release();
    await rm(folder, { recursive: true, force: true });
  }
}

interface QueueOptions {
  folder: string;
  /** Each table's CSV columns with their types, from the definition. */
  columnsOf: ReadonlyMap<string, { name: string; type: string }[]>;
  signal: AbortSignal;
  /** Throws if the server ended the connection: a query on it would crash postgres.js. */
  assertOpen: (connection: ReservedSql) => void;
  onTableDone?: (table: TableSummary) => void;
  onTableBytes?: (bytes: number) => void;
}

/** A table read ahead of its turn: its compressed members wait in a file. */
interface StagedTable {
  path: string;
  csv: CsvSummary;
}

/**
 * Hands the schema's tables out to the connections in order, and writes them into the tarball
 * in the same order whatever order they finish in.
 */
class TableQueue {
  private readonly summaries: TableSummary[] = [];
  private readonly staged = new Map<number, StagedTable>();
  private readonly bytesRead = new Map<number, number>();
  /** The next table to start, and the table whose turn it is in the tarball. */
  private nextToStart = 0;
  private turn = 0;
  /** Tables staged, being staged, or being copied into the tarball. */
  private onDisk = 0;
  private writingStaged: Promise<void> = Promise.resolve();
  private wake: (() => void)[] = [];
  private failure: { error: unknown } | undefined;
  private readonly stop: AbortController = new AbortController();
  /** The thread pool's compression work shared out: tables at once share BLOCKS_IN_FLIGHT, keeping memory flat. */
  private blocksInFlight = BLOCKS_IN_FLIGHT;

  constructor(
    private readonly schema: string,
    private readonly tables: BaseTable[],
    private readonly tarball: SchemaTarball,
    private readonly options: QueueOptions,
  ) {
    options.signal.addEventListener('abort', () => this.fail(options.signal.reason), { once: true });
  }

  async run(connections: ReservedSql[]): Promise<TableSummary[]> {
    this.blocksInFlight = Math.max(2, Math.ceil(BLOCKS_IN_FLIGHT / connections.length));
    await Promise.all(connections.map((connection) => this.work(connection, connections.length)));
    await this.writingStaged;
    if (this.failure) throw this.failure.error;
    return this.summaries;
  }

  private async work(connection: ReservedSql, parallelism: number): Promise<void> {
    try {
      while (!this.failure && this.nextToStart < this.tables.length) {
        const index = this.nextToStart++;
        // A table ahead of its turn waits on disk; at most `parallelism - 1` do at any time,
        // counting those being staged and the one being copied into the tarball, so the disk
        // holds at most that many compressed tables.
        while (!this.failure && index !== this.turn && this.onDisk >= parallelism - 1) await new Promise<void>((resolve) => this.wake.push(resolve));
        if (this.failure) return;
        if (index === this.turn) {
          await this.streamInTurn(connection, index);
        } else {
          this.onDisk += 1;
          await this.stageAhead(connection, index);
        }
      }
    } catch (error) {
      this.fail(error);
    }
  }

  /** The table whose turn it is: COPY → gzip → the upload, nothing on disk. */
  private async streamInTurn(connection: ReservedSql, index: number): Promise<void> {
    const table = this.tables[index]!;
    const file = tableEntryName(this.schema, table.name);
    const entry = this.tarball.startEntry(file);
    const csv = await this.read(connection, index, (compressed) => entry.write(compressed));
    await entry.end(csv.bytes);
    this.done(index, csv);
    this.moveTurn();
    this.advance();
  }

  /** A table ahead of its turn: its compressed members go to a file until the turn comes. */
  private async stageAhead(connection: ReservedSql, index: number): Promise<void> {
    // Named by position: table names may hold anything a path should not. 'wx': always a new file.
    const path = join(this.options.folder, `${index}.csv.gz`);
    const handle = await open(path, 'wx');
    let csv: CsvSummary;
    try {
      csv = await this.read(connection, index, (compressed) => writeAll(handle, compressed, path));
    } finally {
      await handle.close();
    }
    this.staged.set(index, { path, csv });
    this.done(index, csv);
    this.advance();
  }

  private async read(connection: ReservedSql, index: number, write: (compressed: Buffer) => Promise<void>): Promise<CsvSummary> {
    const table = this.tables[index]!;
    try {
      this.options.assertOpen(connection);
      return await streamTableAsCsv(connection, this.schema, table, write, {
        signal: this.stop.signal,
        blocksInFlight: this.blocksInFlight,
        onBytes: (bytes) => {
          this.bytesRead.set(index, bytes);
          this.options.onTableBytes?.(sum(this.bytesRead.values()));
        },
      });
    } catch (error) {
      throw failedStep(`Reading schema "${this.schema}" from the database`, error);
    }
  }

  private done(index: number, csv: CsvSummary): void {
    const table = this.tables[index]!;
    this.bytesRead.delete(index);
    const summary: TableSummary = { table: table.name, file: tableEntryName(this.schema, table.name), rows: csv.rows, bytes: csv.bytes, sha256: csv.sha256, columns: this.options.columnsOf.get(table.name) ?? [] };
    this.summaries[index] = summary;
    logger.debug('Table exported', { schema: this.schema, ...summary, compressedBytes: csv.compressedBytes });
    this.options.onTableDone?.(summary);
  }

  /**
   * Copies the staged tables whose turn has come into the tarball, moving the turn on past each.
   * Serialised, and never at the same time as a table streaming in turn: that table's turn has
   * come, so it is not staged, and nothing after it is copied until it is written.
   */
  private advance(): void {
    this.writingStaged = this.writingStaged.then(async () => {
      for (let next = this.staged.get(this.turn); next && !this.failure; next = this.staged.get(this.turn)) {
        await this.copyStaged(this.turn, next);
        this.staged.delete(this.turn);
        await rm(next.path, { force: true });
        this.onDisk -= 1;
        this.moveTurn();
      }
    }).catch((error: unknown) => this.fail(error));
  }

  private async copyStaged(index: number, { path, csv }: StagedTable): Promise<void> {
    const entry = this.tarball.startEntry(tableEntryName(this.schema, this.tables[index]!.name));
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) await entry.write(chunk as Buffer);
    await entry.end(csv.bytes);
  }

  private moveTurn(): void {
    this.turn += 1;
    for (const resolve of this.wake.splice(0)) resolve();
  }

  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = { error };
    // Cancels the other tables' COPYs on the server, rather than reading them to the end.
    this.stop.abort(error);
    for (const resolve of this.wake.splice(0)) resolve();
  }
}

/** write(2) may write less than asked (a disk filling up): finish the chunk or fail. */
async function writeAll(handle: Awaited<ReturnType<typeof open>>, chunk: Buffer, path: string): Promise<void> {
  for (let written = 0; written < chunk.length; ) {
    const { bytesWritten } = await handle.write(chunk, written, chunk.length - written);
    if (bytesWritten === 0) throw new Error(`Could not write to ${path}: no bytes written (disk full?)`);
    written += bytesWritten;
  }
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
