import type { Sql } from 'postgres';
import type { HeldConnection } from '../clients/transaction';
import { postDataWork, preDataStatements, qualified, sequenceStatements } from '../definition/definition-statements';
import type { PostDataUnit } from '../definition/definition-statements';
import { findMissingExtensions } from '../definition/find-missing-extensions';
import type { SchemaDefinition, SchemaNames, TableDefinition } from '../definition/schema-definition';
import type { SchemaManifest } from '../export/export-schema';
import { quoteIdentifier } from '../export/quote-identifier';
import { compareWithManifest } from '../verification/compare-with-manifest';
import { refuseOutsideDependents } from './check-target';
import { BuildWhileLoading } from './build-while-loading';
import { loadTarballs } from './load-tarballs';
import type { LoadedTable, LoadedTarball } from './load-tarballs';
import type { TarballDefinition } from './read-tarball-definition';
import type { SchemaReplacement } from './replace-schemas';
import { RestoreRefusedError } from './restore-errors';
import { inParallel, runStatements } from './run-statements';

/** What was loaded into a staging schema, every table checked against its manifest. */
export interface StagedSchema {
  schema: string;
  source: string;
  /** The export run and its moment, from the manifest. */
  runId?: string;
  asOf?: string;
  tables: number;
  rows: number;
  bytes: number;
}

export type StagingEvent =
  | { kind: 'table-loaded'; table: LoadedTable }
  | { kind: 'bytes'; bytes: number }
  | { kind: 'phase'; phase: 'indexes and constraints' | 'foreign keys' | 'sequences' | 'analyze'; units?: number };

/** Each live schema's staging name: what every definition text is built under while out of sight. */
export function stagingNames(replacements: readonly SchemaReplacement[]): SchemaNames {
  return new Map(replacements.map((r) => [r.live, r.staging]));
}

/**
 * Refuses what the target cannot take before anything is built there: an extension a definition
 * needs (naming the CREATE EXTENSION), or objects of its own outside the replaced schemas that
 * depend on their tables.
 */
export async function refuseWhatTheTargetCannotTake(control: HeldConnection, definitions: SchemaDefinition[]): Promise<void> {
  const missing = await findMissingExtensions(control.connection, definitions);
  if (missing.length > 0) {
    throw new RestoreRefusedError(
      missing
        .map((m) => `The target lacks the extension ${m.extension} (in schema ${quoteIdentifier(m.schema)}), which ${m.usedBy.slice(0, 3).join(', ')} need${m.usedBy.length === 1 ? 's' : ''}: CREATE EXTENSION ${m.extension} SCHEMA ${quoteIdentifier(m.schema)}`)
        .join('; '),
    );
  }
  await refuseOutsideDependents(control.connection, definitions.map((d) => d.schema));
}

/**
 * Creates the staging schemas and everything before the rows (types, sequences, tables; no keys
 * or indexes), every definition at once, so that a type or sequence one schema takes from another
 * binds to the other's staging copy.
 */
export async function createStagingSchemas(control: HeldConnection, definitions: SchemaDefinition[], replacements: readonly SchemaReplacement[]): Promise<void> {
  await runStatements(control, 'Creating the tables', [
    ...replacements.map((r) => `CREATE SCHEMA ${quoteIdentifier(r.staging)}`),
    ...preDataStatements(definitions, stagingNames(replacements)),
  ]);
}

export interface LoadOptions {
  /** Tables loaded (and indexes built) at once, each on a connection of its own. */
  parallelism: number;
  /** Per connection building indexes; pg_restore leaves the server's (64 MB by default). */
  maintenanceWorkMem?: string;
  /** The schemas whose foreign keys are built here (default: all); the others' are left to whoever puts the schemas in place. */
  foreignKeysTo?: (schema: string) => boolean;
  onEvent?: (event: StagingEvent) => void;
  signal?: AbortSignal;
}

/**
 * Fills staging schemas created by createStagingSchemas: loads the rows, checking every table
 * against its manifest as it passes (refusing the lot if any differs), then builds keys, checks and
 * indexes after the data (pg_restore's order, largest tables first; a reader with nothing left to
 * load builds those of tables already loaded: build-while-loading.ts) and runs each table's ANALYZE
 * after them, then foreign keys (added NOT VALID, then validated, so keys to one table are checked
 * at once), sets the sequences and analyzes partitioned tables. `names` maps every schema of the
 * restore to its staging name, those of `tarballs` and any other being built beside them.
 */
export async function loadStagedSchemas(sql: Sql, tarballs: TarballDefinition[], names: SchemaNames, options: LoadOptions): Promise<StagedSchema[]> {
  const emit = options.onEvent ?? (() => {});
  const { parallelism, signal } = options;
  const definitions = tarballs.map((t) => t.definition);
  const buildUnit = async (connection: HeldConnection, unit: PostDataUnit): Promise<void> => {
    const memory = `SET maintenance_work_mem = '${options.maintenanceWorkMem ?? '256MB'}'`;
    await runStatements(connection, `Building ${quoteIdentifier(unit.schema)}.${quoteIdentifier(unit.table)}`, [memory, ...unit.statements]);
  };
  // Each plain table's first unit ends with its ANALYZE (a table with no keys or indexes has a unit
  // of that alone), so statistics are gathered while other tables still load, not in a phase of
  // their own after every build.
  const keysAndIndexes = withAnalyze(postDataWork(definitions, names, 1), definitions, names);
  // A reader with no tarball of its own left builds loaded tables' units meanwhile.
  const early = new BuildWhileLoading(keysAndIndexes, definitions, buildUnit);
  const loaded = await loadTarballs(sql, tarballs, names, parallelism, {
    onTableLoaded: (table) => emit({ kind: 'table-loaded', table }),
    onBytes: (bytes) => emit({ kind: 'bytes', bytes }),
  }, signal, early);
  const staged = checkAgainstManifests(loaded);

  const bytesOf = new Map(loaded.flatMap((l) => l.loaded.map((t) => [`${t.schema}\u0000${t.table}`, t.bytes] as const)));
  const phases = [
    { phase: 'indexes and constraints', units: keysAndIndexes },
    { phase: 'foreign keys', units: postDataWork(definitions, names, 2, { foreignKeysTo: options.foreignKeysTo, keysValidatedApart: true }) },
  ] as const;
  for (const { phase, units } of phases) {
    // Largest tables first, so the last to finish is not the biggest.
    const work = units
      .filter((unit) => !early.isBuilt(unit))
      .sort((a, b) => (bytesOf.get(`${b.schema}\u0000${b.table}`) ?? 0) - (bytesOf.get(`${a.schema}\u0000${a.table}`) ?? 0));
    emit({ kind: 'phase', phase, units: work.length });
    await inParallel(sql, parallelism, work, buildUnit, signal);
  }
  emit({ kind: 'phase', phase: 'sequences' });
  await inParallel(sql, 1, [sequenceStatements(definitions, names)], async (connection, statements) => {
    await runStatements(connection, 'Setting the sequences', statements);
  }, signal);
  // Partitioned tables and their partitions, analyzed once all are built.
  const rest = definitions.flatMap((d) => d.tables.filter((t) => !isPlain(t)).map((t) => qualified(d.schema, t.name, names)));
  if (rest.length > 0) {
    emit({ kind: 'phase', phase: 'analyze', units: rest.length });
    await inParallel(sql, parallelism, rest, async (connection, table) => {
      await runStatements(connection, 'Running ANALYZE', [`ANALYZE ${table}`]);
    }, signal);
  }
  return staged;
}

/** A table neither partitioned nor a partition: its unit of keys and indexes is its own (build-while-loading.ts). */
function isPlain(table: TableDefinition): boolean {
  return table.partitionKey === null && table.partitionOf === null;
}

/**
 * `units` (postDataWork phase 1) with each plain table's ANALYZE at the end of its unit, after
 * its indexes (an expression index's statistics need the index); a plain table without keys or
 * indexes gets a unit of its ANALYZE alone.
 */
export function withAnalyze(units: PostDataUnit[], definitions: SchemaDefinition[], names: SchemaNames): PostDataUnit[] {
  const key = (schema: string, table: string): string => `${schema}\u0000${table}`;
  const plain = new Set(definitions.flatMap((d) => d.tables.filter(isPlain).map((t) => key(d.schema, t.name))));
  const analyze = (schema: string, table: string): string => `ANALYZE ${qualified(schema, table, names)}`;
  const withIt = units.map((unit) =>
    unit.kind === 'table' && plain.has(key(unit.schema, unit.table)) ? { ...unit, statements: [...unit.statements, analyze(unit.schema, unit.table)] } : unit,
  );
  const covered = new Set(units.filter((unit) => unit.kind === 'table').map((unit) => key(unit.schema, unit.table)));
  const alone = definitions.flatMap((d) =>
    d.tables.filter((t) => isPlain(t) && !covered.has(key(d.schema, t.name))).map((t): PostDataUnit => ({ schema: d.schema, table: t.name, kind: 'table', statements: [analyze(d.schema, t.name)] })),
  );
  return [...withIt, ...alone];
}

/** Each tarball against its manifest (the verifier's comparison), and each COPY's rows against the CSV's. */
function checkAgainstManifests(loaded: LoadedTarball[]): StagedSchema[] {
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
