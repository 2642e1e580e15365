// ISql: a plain client, a reserved connection or a transaction on the target database.
import type { ISql } from 'postgres';
import { quoteIdentifier } from '../export/quote-identifier';
import type { SchemaDefinition } from './schema-definition';

export interface MissingExtension {
  extension: string;
  /** The schema the definitions' texts name it in (where it was in the source). */
  schema: string;
  /** What needs it, each prefixed with its schema. */
  usedBy: string[];
  /** Where the target has it, if in another schema than the texts name; null when it has none. */
  installedIn: string | null;
}

/**
 * The extensions the definitions need that the target lacks, or has in another schema than the
 * one their texts name (`public.citext` does not resolve to `ext.citext`). Checked before a restore
 * creates anything: a missing type would fail it half-way.
 */
export async function findMissingExtensions(sql: ISql, definitions: SchemaDefinition[]): Promise<MissingExtension[]> {
  const needed = new Map<string, { extension: string; schema: string; usedBy: string[] }>();
  for (const definition of definitions) {
    for (const use of definition.extensions) {
      const key = JSON.stringify([use.name, use.schema]);
      const entry = needed.get(key) ?? { extension: use.name, schema: use.schema, usedBy: [] };
      entry.usedBy.push(...use.usedBy.map((what) => `${quoteIdentifier(definition.schema)}: ${what}`));
      needed.set(key, entry);
    }
  }
  if (needed.size === 0) return [];
  const installed = await sql<{ name: string; schema: string }[]>`
    SELECT e.extname AS name, n.nspname AS schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname IN ${sql([...new Set([...needed.values()].map((entry) => entry.extension))])}
  `;
  const where = new Map(installed.map((row) => [row.name, row.schema]));
  return [...needed.values()]
    .filter((entry) => where.get(entry.extension) !== entry.schema)
    .map((entry) => ({ ...entry, installedIn: where.get(entry.extension) ?? null }));
}
