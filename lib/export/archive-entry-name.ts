/**
 * Turns a schema or table name into one safe path segment for the tarball.
 *
 * Names keep their letters (upper case, spaces, quotes and non-ASCII stay as they are) so the
 * files are easy to recognise; only what a tar reader or archiver's path normalisation would
 * reinterpret is percent-encoded: `/` and `\` (directory separators), `:` (archiver strips a
 * leading `word:` as a drive letter), control characters, and `%` itself so the encoding can
 * be undone. A name of `.` or `..` cannot reach this with the `.csv` suffix, but a schema folder
 * could, so those are encoded too. The manifest maps each real table name to its file.
 */
export function encodePathSegment(name: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
  const encoded = name.replace(/[%/\\:\u0000-\u001f\u007f]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  if (encoded === '.' || encoded === '..') return encoded.replaceAll('.', '%2E');
  return encoded;
}

/** The tar entry of one table's CSV: `<schema>/<table>.csv`. */
export function tableEntryName(schema: string, table: string): string {
  return `${encodePathSegment(schema)}/${encodePathSegment(table)}.csv`;
}

/** The tar entry of the schema's manifest: `<schema>/manifest.json`. */
export function manifestEntryName(schema: string): string {
  return `${encodePathSegment(schema)}/manifest.json`;
}

/** The tar entry of the schema's definition, the tarball's first: `<schema>/definition.json` (lib/definition). */
export function definitionEntryName(schema: string): string {
  return `${encodePathSegment(schema)}/definition.json`;
}

/** The same definition as SQL for people and psql: `<schema>/schema.sql`, the tarball's second entry. */
export function schemaSqlEntryName(schema: string): string {
  return `${encodePathSegment(schema)}/schema.sql`;
}
