import type { Sql } from 'postgres';
import type { PostDataUnit } from '../definition/definition-statements';
import { quoteIdentifier } from '../export/quote-identifier';
import { refuseStagingBoundToReplaced } from './check-target';
import { replaceSchemas } from './replace-schemas';
import type { SchemaReplacement } from './replace-schemas';
import { dropSchemas, inParallel, runStatements } from './run-statements';

export interface PutInPlaceOptions {
  /** Foreign keys between the staging schemas, built first (a restore job's steps leave them to its last). */
  foreignKeys?: PostDataUnit[];
  parallelism?: number;
  /** Set on each new schema as it goes live: where it came from. */
  comment?: (replacement: SchemaReplacement) => string;
  onRetry?: (attempt: number, error: Error) => void;
  onWarning?: (message: string) => void;
}

/**
 * Puts the staging schemas in place of the live ones in one transaction (replace-schemas.ts), then
 * drops the old ones; refuses first if anything built refers to a schema it replaces. Resolves with the live names that existed before (yesterday's restore).
 * An old schema that cannot be dropped is a warning: the replacement has happened, and the next
 * restore removes it.
 */
export async function putSchemasInPlace(sql: Sql, replacements: SchemaReplacement[], options: PutInPlaceOptions = {}): Promise<{ replacedExisting: Set<string> }> {
  const foreignKeys = options.foreignKeys ?? [];
  await inParallel(sql, options.parallelism ?? 2, foreignKeys, async (connection, unit) => {
    await runStatements(connection, `Building the foreign keys of ${quoteIdentifier(unit.schema)}.${quoteIdentifier(unit.table)}`, unit.statements);
  });
  await refuseStagingBoundToReplaced(sql, replacements);
  const live = replacements.map((r) => r.live);
  const existing = new Set(
    (await sql<{ name: string }[]>`SELECT nspname AS name FROM pg_catalog.pg_namespace WHERE nspname = ANY(${live}::text[])`).map((r) => r.name),
  );
  await replaceSchemas(sql, replacements, { onRetry: options.onRetry, comment: options.comment });
  // The old schemas are out of sight now; readers still on them finish first (dropSchemas waits up
  // to 30 s for them, never queued in front of them or holding one table while it waits for another).
  const retired = replacements.map((r) => r.retired);
  const notDropped = await dropSchemas(sql, retired);
  if (notDropped) options.onWarning?.(`The old schemas (${retired.join(', ')}) could not be dropped (${notDropped}); the next restore removes them`);
  return { replacedExisting: existing };
}
