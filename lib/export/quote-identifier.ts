/**
 * Quotes a PostgreSQL identifier (schema, table or column name) for use in SQL text.
 *
 * Our own rather than postgres.js's `sql(name)` helper, which splits on dots
 * (`a.b` becomes `"a"."b"`), so a table whose name contains a dot would be misread.
 */
export function quoteIdentifier(name: string): string {
  if (name.length === 0) throw new Error('An identifier cannot be empty');
  if (name.includes('\0')) throw new Error('An identifier cannot contain a NUL character');
  return `"${name.replaceAll('"', '""')}"`;
}
