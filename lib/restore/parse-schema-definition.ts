import { DEFINITION_FORMAT } from '../definition/schema-definition';
import type { SchemaDefinition } from '../definition/schema-definition';

/**
 * definition.json's bytes as a SchemaDefinition, or why not. Checks the shape the restore relies
 * on (format, schema, the lists, each table's name and columns); the SQL texts inside are checked
 * by the target when they run.
 */
export function parseSchemaDefinition(bytes: Buffer): { definition: SchemaDefinition } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { error: `not JSON (${(error as Error).message})` };
  }
  const definition = value as Partial<SchemaDefinition> | null;
  if (typeof definition !== 'object' || definition === null) return { error: 'not an object' };
  if (definition.format !== DEFINITION_FORMAT) {
    return { error: `format ${JSON.stringify(definition.format)}, and this restore reads format ${DEFINITION_FORMAT}: use the restore of the version that made the export` };
  }
  if (typeof definition.schema !== 'string' || definition.schema === '') return { error: 'no "schema"' };
  if (definition.unavailable !== undefined) {
    return { error: `the export could not carry this schema's definition (${String(definition.unavailable)}): the tarball holds its tables' rows only, as CSV, to load into tables made by hand` };
  }
  for (const list of ['searchPath', 'extensions', 'types', 'sequences', 'tables'] as const) {
    if (!Array.isArray(definition[list])) return { error: `no "${list}" list` };
  }
  for (const [index, table] of definition.tables!.entries()) {
    const ok = typeof table?.name === 'string' && Array.isArray(table.columns) && Array.isArray(table.csvColumns) && Array.isArray(table.constraints) && Array.isArray(table.indexes) && Array.isArray(table.foreignKeys);
    if (!ok) return { error: `tables[${index}] lacks a name, columns, csvColumns, constraints, indexes or foreignKeys` };
  }
  return { definition: definition as SchemaDefinition };
}
