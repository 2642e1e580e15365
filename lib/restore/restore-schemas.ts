import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { connectDatabase } from '../clients/database';
import { holdConnection } from '../clients/transaction';
import type { HeldConnection } from '../clients/transaction';
import { quoteIdentifier } from '../export/quote-identifier';
import { assertReachable, refuseSourceDatabase } from './check-target';
import type { RestoreSource } from './list-restore-sources';
import { putSchemasInPlace } from './put-schemas-in-place';
import { readTarballDefinition } from './read-tarball-definition';
import type { TarballDefinition } from './read-tarball-definition';
import type { SchemaReplacement } from './replace-schemas';
import { describeFailure, RestoreCannotRunError, RestoreRefusedError } from './restore-errors';
import { dropSchemas, lockTargetAndRemoveLeftovers, RETIRED_PREFIX, STAGING_PREFIX, unlockTarget } from './run-statements';
import { createStagingSchemas, loadStagedSchemas, refuseWhatTheTargetCannotTake, stagingNames } from './stage-schemas';
import type { StagedSchema, StagingEvent } from './stage-schemas';

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
  | StagingEvent
  | { kind: 'phase'; phase: 'replacing'; units?: undefined }
  | { kind: 'replace-retry'; attempt: number; message: string }
  | { kind: 'warning'; message: string };

export interface RestoredSchema extends StagedSchema {
  /** The target held this schema before (yesterday's restore), now replaced. */
  replacedExisting: boolean;
}

export interface RestoreResult {
  schemas: RestoredSchema[];
  timeTakenMs: number;
}


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
  let staged = false;
  try {
    await assertReachable(sql, describeTarget(request.targetUrl));
    await refuseSourceDatabase(sql, request.targetUrl, request.sourceDatabaseUrl);
    held = await holdConnection(sql);
    const leftovers = await lockTargetAndRemoveLeftovers(held);
    if (leftovers.length > 0) emit({ kind: 'leftovers-removed', schemas: leftovers });
    const definitions = tarballs.map((t) => t.definition);
    await refuseWhatTheTargetCannotTake(held, definitions);
    request.signal?.throwIfAborted();

    staged = true;
    await createStagingSchemas(held, definitions, replacements);
    const restored = await loadStagedSchemas(sql, tarballs, stagingNames(replacements), {
      parallelism,
      maintenanceWorkMem: request.maintenanceWorkMem,
      onEvent: emit,
      signal: request.signal,
    });

    request.signal?.throwIfAborted();
    emit({ kind: 'phase', phase: 'replacing' });
    const { replacedExisting } = await putSchemasInPlace(sql, replacements, {
      onRetry: (attempt, error) => emit({ kind: 'replace-retry', attempt, message: error.message }),
      onWarning: (message) => emit({ kind: 'warning', message }),
    });
    staged = false;
    return {
      schemas: restored.map((schema) => ({ ...schema, replacedExisting: replacedExisting.has(schema.schema) })),
      timeTakenMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    const failure = categoriseRestoreFailure(error);
    if (staged) {
      const left = await dropSchemas(sql, replacements.map((r) => r.staging));
      if (left) failure.message += `. The staging schemas could not be dropped (${left}): the next restore removes them`;
    }
    throw failure;
  } finally {
    await unlockTarget(held);
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

/** A failure as the restore reports it: refused (exit 1) or could not run (exit 2). */
export function categoriseRestoreFailure(error: unknown): Error {
  if (error instanceof RestoreRefusedError || error instanceof RestoreCannotRunError) return error;
  if ((error as Error)?.name === 'AbortError') return new RestoreCannotRunError('Stopped before the schemas were replaced: nothing changed');
  const code = (error as { code?: string }).code;
  if (code && /^(ENOENT|EACCES|ECONNREFUSED|ENOTFOUND)$/.test(code)) return new RestoreCannotRunError(describeFailure(error));
  return new RestoreRefusedError(describeFailure(error));
}

export function describeTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return '(an unparsable URL)';
  }
}
