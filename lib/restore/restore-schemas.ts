import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { ReservedSql, Sql } from 'postgres';
import { connectDatabase } from '../clients/database';
import { holdConnection, inTransaction, rollBackAndRelease } from '../clients/transaction';
import type { HeldConnection } from '../clients/transaction';
import { postDataWork, preDataStatements, sequenceStatements } from '../definition/definition-statements';
import type { PostDataUnit } from '../definition/definition-statements';
import { findMissingExtensions } from '../definition/find-missing-extensions';
import type { SchemaNames } from '../definition/schema-definition';
import { quoteIdentifier } from '../export/quote-identifier';
import { compareWithManifest } from '../verification/compare-with-manifest';
import type { SchemaManifest } from '../export/export-schema';
import { assertReachable, refuseOutsideDependents, refuseSourceDatabase } from './check-target';
import type { RestoreSource } from './list-restore-sources';
import { BuildWhileLoading } from './build-while-loading';
import { loadTarballs } from './load-tarballs';
import type { LoadedTable, LoadedTarball } from './load-tarballs';
import { readTarballDefinition } from './read-tarball-definition';
import type { TarballDefinition } from './read-tarball-definition';
import { replaceSchemas } from './replace-schemas';
import type { SchemaReplacement } from './replace-schemas';
import { describeFailure, RestoreCannotRunError, RestoreRefusedError } from './restore-errors';

export interface RestoreRequest {
  sources: RestoreSource[];
  targetUrl: string;
  /** Only the tarballs of these schemas (their definitions' names); default every one. */
  schemas?: string[];
  /** The export's own database (DATABASE_URL), which the restore refuses to write into. */
  sourceDatabaseUrl?: string;
  /** Tables loaded (and indexes built) at once, each on a connection of its own. */
  parallelism?: number;
  /** Per connection building indexes; pg_restore leaves the server's (64 MB by default). */
  maintenanceWorkMem?: string;
  onProgress?: (event: RestoreEvent) => void;
  /** Stops the restore (a person's Ctrl-C): nothing is replaced, nothing is left behind. */
  signal?: AbortSignal;
}

export type RestoreEvent =
  | { kind: 'definitions'; schemas: { schema: string; tables: number; source: string }[] }
  | { kind: 'leftovers-removed'; schemas: string[] }
  | { kind: 'table-loaded'; table: LoadedTable }
  | { kind: 'bytes'; bytes: number }
  | { kind: 'phase'; phase: 'indexes and constraints' | 'foreign keys' | 'sequences' | 'analyze' | 'replacing'; units?: number }
  | { kind: 'replace-retry'; attempt: number; message: string }
  | { kind: 'warning'; message: string };

export interface RestoredSchema {
  schema: string;
  source: string;
  runId?: string;
  asOf?: string;
  tables: number;
  rows: number;
  bytes: number;
  /** The target held this schema before (yesterday's restore), now replaced. */
  replacedExisting: boolean;
}

export interface RestoreResult {
  schemas: RestoredSchema[];
  timeTakenMs: number;
}

/** Session-level advisory lock key: one restore at a time into a database (hashtext of the project's name). */
const RESTORE_LOCK = "hashtext('water-abstraction-jobs restore')";
const STAGING_PREFIX = 'waj_restore_';
const RETIRED_PREFIX = 'waj_retired_';

/**
 * Restores export tarballs into `targetUrl`: reads each tarball's definition, builds every schema
 * out of sight (staging schemas `waj_restore_<id>_<n>`), loads the rows checking each table against
 * the manifest as it passes, builds constraints and indexes after the data (pg_restore's order),
 * sets the sequences, runs ANALYZE, then replaces the live schemas with the new ones in one
 * transaction (replace-schemas.ts). All or nothing: on any failure the staging schemas are dropped
 * and the live ones are as they were.
 *
 * Throws RestoreRefusedError (the tarballs or the target say no) or RestoreCannotRunError.
 */
export async function restoreSchemas(request: RestoreRequest): Promise<RestoreResult> {
  const started = performance.now();
  const emit = request.onProgress ?? (() => {});
  const parallelism = Math.max(1, request.parallelism ?? Math.min(4, Math.max(2, availableParallelism())));

  const tarballs = selectSchemas(await Promise.all(request.sources.map((source) => readTarballDefinition(source))), request.schemas);
  emit({ kind: 'definitions', schemas: tarballs.map((t) => ({ schema: t.definition.schema, tables: t.definition.tables.length, source: t.source.label })) });

  // One connection holds the lock and runs the DDL; `parallelism` load and build; one more is
  // kept free for ending a stuck connection (load-tarballs.ts rollBack).
  const sql = connectDatabase(request.targetUrl, { max: parallelism + 2, connectTimeout: 10 });
  let held: HeldConnection | undefined;
  const id = randomBytes(3).toString('hex');
  const replacements: SchemaReplacement[] = tarballs.map((t, n) => ({ live: t.definition.schema, staging: `${STAGING_PREFIX}${id}_${n}`, retired: `${RETIRED_PREFIX}${id}_${n}` }));
  const names: SchemaNames = new Map(replacements.map((r) => [r.live, r.staging]));
  let staged = false;
  try {
    await assertReachable(sql, describeTarget(request.targetUrl));
    await refuseSourceDatabase(sql, request.targetUrl, request.sourceDatabaseUrl);
    held = await holdConnection(sql);
    const control = held.connection;
    const [{ locked } = { locked: false }] = await control.unsafe<{ locked: boolean }[]>(`SELECT pg_try_advisory_lock(${RESTORE_LOCK}) AS locked`);
    if (!locked) throw new RestoreCannotRunError('Another restore into this database is running: wait for it to end');

    const leftovers = await removeLeftovers(control);
    if (leftovers.length > 0) emit({ kind: 'leftovers-removed', schemas: leftovers });
    const definitions = tarballs.map((t) => t.definition);
    const missing = await findMissingExtensions(control, definitions);
    if (missing.length > 0) {
      throw new RestoreRefusedError(
        missing
          .map((m) => `The target lacks the extension ${m.extension} (in schema ${quoteIdentifier(m.schema)}), which ${m.usedBy.slice(0, 3).join(', ')} need${m.usedBy.length === 1 ? 's' : ''}: CREATE EXTENSION ${m.extension} SCHEMA ${quoteIdentifier(m.schema)}`)
          .join('; '),
      );
    }
    await refuseOutsideDependents(control, replacements.map((r) => r.live));
    request.signal?.throwIfAborted();

    staged = true;
    await runDefinition(held, 'Creating the tables', [
      ...replacements.map((r) => `CREATE SCHEMA ${quoteIdentifier(r.staging)}`),
      ...preDataStatements(definitions, names),
    ]);

    const buildUnit = async (connection: HeldConnection, unit: PostDataUnit): Promise<void> => {
      await connection.connection.unsafe(`SET maintenance_work_mem = '${request.maintenanceWorkMem ?? '256MB'}'`);
      await runDefinition(connection, `Building ${quoteIdentifier(unit.schema)}.${quoteIdentifier(unit.table)}`, unit.statements);
    };
    // A reader with no tarball of its own left builds loaded tables' keys and indexes meanwhile.
    const early = new BuildWhileLoading(postDataWork(definitions, names, 1), definitions, buildUnit);
    const loaded = await loadTarballs(sql, tarballs, names, parallelism, {
      onTableLoaded: (table) => emit({ kind: 'table-loaded', table }),
      onBytes: (bytes) => emit({ kind: 'bytes', bytes }),
    }, request.signal, early);
    const restored = checkAgainstManifests(loaded);

    const bytesOf = new Map(loaded.flatMap((l) => l.loaded.map((t) => [`${t.schema}\u0000${t.table}`, t.bytes] as const)));
    for (const phase of [1, 2] as const) {
      // Largest tables first, so the last to finish is not the biggest.
      const work = postDataWork(definitions, names, phase, { keysValidatedApart: true })
        .filter((unit) => !early.isBuilt(unit))
        .sort((a, b) => (bytesOf.get(`${b.schema}\u0000${b.table}`) ?? 0) - (bytesOf.get(`${a.schema}\u0000${a.table}`) ?? 0));
      emit({ kind: 'phase', phase: phase === 1 ? 'indexes and constraints' : 'foreign keys', units: work.length });
      await inParallel(sql, parallelism, work, buildUnit, request.signal);
    }
    emit({ kind: 'phase', phase: 'sequences' });
    await runDefinition(held, 'Setting the sequences', sequenceStatements(definitions, names));
    emit({ kind: 'phase', phase: 'analyze' });
    const tables = definitions.flatMap((d) => d.tables.map((t) => `${quoteIdentifier(names.get(d.schema)!)}.${quoteIdentifier(t.name)}`));
    await inParallel(sql, parallelism, tables, async (connection, table) => {
      await runDefinition(connection, 'Running ANALYZE', [`ANALYZE ${table}`]);
    }, request.signal);

    request.signal?.throwIfAborted();
    emit({ kind: 'phase', phase: 'replacing' });
    const existing = new Set((await control<{ name: string }[]>`SELECT nspname AS name FROM pg_catalog.pg_namespace WHERE nspname = ANY(${replacements.map((r) => r.live)}::text[])`).map((r) => r.name));
    await replaceSchemas(sql, replacements, { onRetry: (attempt, error) => emit({ kind: 'replace-retry', attempt, message: error.message }) });
    staged = false;
    // The old schemas are out of sight now; readers still on them finish first (DROP waits).
    for (const { retired } of replacements) {
      // Replaced already: a schema that cannot be dropped now is a leftover the next restore removes.
      await control.unsafe(`DROP SCHEMA IF EXISTS ${quoteIdentifier(retired)} CASCADE`).catch((error: unknown) =>
        emit({ kind: 'warning', message: `The old schema ${retired} could not be dropped (${describeFailure(error)}); the next restore removes it` }),
      );
    }
    return {
      schemas: restored.map((schema) => ({ ...schema, replacedExisting: existing.has(schema.schema) })),
      timeTakenMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    const failure = categorise(error);
    if (staged) {
      const left = await dropStaging(sql, replacements);
      if (left) failure.message += `. The staging schemas could not be dropped (${left}): the next restore removes them`;
    }
    throw failure;
  } finally {
    // Unlocked by ending the session's hold: released if open, else the server ended it (and the lock).
    if (held && !held.isClosed()) {
      await held.connection.unsafe(`SELECT pg_advisory_unlock(${RESTORE_LOCK})`).catch(() => {});
      if (!held.isClosed()) held.connection.release();
    }
    await sql.end({ timeout: 5 });
  }
}

function selectSchemas(tarballs: TarballDefinition[], wanted: string[] | undefined): TarballDefinition[] {
  const bySchema = new Map<string, TarballDefinition>();
  for (const tarball of tarballs) {
    const other = bySchema.get(tarball.definition.schema);
    if (other) throw new RestoreCannotRunError(`${other.source.label} and ${tarball.source.label} both hold schema ${quoteIdentifier(tarball.definition.schema)}: give one`);
    bySchema.set(tarball.definition.schema, tarball);
  }
  if (!wanted) return tarballs;
  const unknown = wanted.filter((schema) => !bySchema.has(schema));
  if (unknown.length > 0) {
    throw new RestoreCannotRunError(`No tarball holds ${unknown.map((s) => quoteIdentifier(s)).join(', ')} (the source holds ${[...bySchema.keys()].map((s) => quoteIdentifier(s)).join(', ')})`);
  }
  return wanted.map((schema) => bySchema.get(schema)!);
}

/** Each tarball against its manifest (the verifier's comparison), and each COPY's rows against the CSV's. */
function checkAgainstManifests(loaded: LoadedTarball[]): Omit<RestoredSchema, 'replacedExisting'>[] {
  return loaded.map((tarball) => {
    const { schema } = tarball.tarball.definition;
    const label = tarball.tarball.source.label;
    const compared = compareWithManifest(tarball.manifest?.bytes, tarball.csvFiles, tarball.definitionFiles);
    const problems = [...tarball.problems, ...compared.problems];
    if (compared.schema !== undefined && compared.schema !== schema) {
      problems.push({ kind: 'manifest-invalid', message: `the manifest is of schema ${compared.schema}, the definition of ${schema}` });
    }
    const counted = new Map(tarball.csvFiles.map((csv) => [csv.file, csv.rows]));
    const fileOf = new Map(compared.tables.map((t) => [t.table, t.file]));
    for (const table of tarball.loaded) {
      const rows = counted.get(fileOf.get(table.table) ?? '');
      if (rows !== undefined && rows !== table.rows) problems.push({ kind: 'rows', table: table.table, message: `${table.table}: the CSV holds ${rows} rows, the COPY loaded ${table.rows}` });
    }
    if (problems.length > 0) {
      const first = problems[0]!;
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
      throw new RestoreRefusedError(`${label}: schema ${quoteIdentifier(schema)}${first.table ? `, table ${quoteIdentifier(first.table)}` : ''} fails its check: ${first.message}${more}`);
    }
    const manifest = JSON.parse(tarball.manifest!.bytes.toString('utf8')) as SchemaManifest;
    return {
      schema,
      source: label,
      runId: manifest.runId,
      asOf: manifest.asOf,
      tables: tarball.csvFiles.length,
      rows: tarball.loaded.reduce((sum, t) => sum + t.rows, 0),
      bytes: tarball.loaded.reduce((sum, t) => sum + t.bytes, 0),
    };
  });
}

/** Runs statements in order; a failure names what was being done and the statement's start. */
async function runDefinition(held: HeldConnection, what: string, statements: string[]): Promise<void> {
  for (const statement of statements) {
    // A write to a connection the server has ended crashes postgres.js (clients/transaction.ts).
    if (held.isClosed()) throw new RestoreRefusedError(`${what}: the connection to the target was lost`);
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
      throw new RestoreRefusedError(`${what}: the target refused ${JSON.stringify(shown)}: ${describeFailure(error)}`);
    }
  }
}

/** Runs `work` over `items`, `parallelism` at once, each on a reserved connection; the first failure stops the rest from starting. */
async function inParallel<T>(sql: Sql, parallelism: number, items: T[], work: (connection: HeldConnection, item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
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

/** Staging and retired schemas of restores that did not end (a killed process): under the lock, no restore is using them. */
async function removeLeftovers(control: ReservedSql): Promise<string[]> {
  const rows = await control<{ name: string }[]>`
    SELECT nspname AS name FROM pg_catalog.pg_namespace
    WHERE nspname LIKE ${`${STAGING_PREFIX}%`} OR nspname LIKE ${`${RETIRED_PREFIX}%`} ORDER BY 1`;
  for (const { name } of rows) await control.unsafe(`DROP SCHEMA ${quoteIdentifier(name)} CASCADE`);
  return rows.map((row) => row.name);
}

/**
 * Drops what this restore built, on a new connection if the control one was lost; waits at most
 * 30 s for locks. Never throws: returns why it could not, or undefined once dropped.
 */
async function dropStaging(sql: Sql, replacements: SchemaReplacement[]): Promise<string | undefined> {
  const drop = (): Promise<void> =>
    inTransaction(sql, async (tx) => {
      await tx.unsafe(`SET LOCAL lock_timeout = '30s'`);
      await tx.unsafe(`DROP SCHEMA IF EXISTS ${replacements.map((r) => quoteIdentifier(r.staging)).join(', ')} CASCADE`);
    });
  try {
    // Twice: the first may get a connection the server has just ended (a terminated backend).
    await drop().catch(drop);
    return undefined;
  } catch (error) {
    return describeFailure(error);
  }
}

function categorise(error: unknown): Error {
  if (error instanceof RestoreRefusedError || error instanceof RestoreCannotRunError) return error;
  if ((error as Error)?.name === 'AbortError') return new RestoreCannotRunError('Stopped before the schemas were replaced: nothing changed');
  const code = (error as { code?: string }).code;
  if (code && /^(ENOENT|EACCES|ECONNREFUSED|ENOTFOUND)$/.test(code)) return new RestoreCannotRunError(describeFailure(error));
  return new RestoreRefusedError(describeFailure(error));
}

function describeTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return '(an unparsable URL)';
  }
}
