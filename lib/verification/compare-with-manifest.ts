import type { DefinitionFileSummary, SchemaManifest, TableSummary } from '../export/export-schema';

/** `<schema>/manifest.json`, as export-schema.ts names it (the schema folder is one path segment). */
export const MANIFEST_ENTRY = /^[^/]+\/manifest\.json$/;

export type ProblemKind =
  | 'not-gzip'
  | 'truncated'
  | 'corrupt'
  | 'manifest-missing'
  | 'manifest-invalid'
  | 'not-in-manifest'
  | 'missing-from-archive'
  | 'duplicate-entry'
  | 'unexpected-entry'
  | 'rows'
  | 'bytes'
  | 'sha256';

/** One thing wrong with a tarball: what, for which table or file, and the manifest's value against the archive's. */
export interface VerificationProblem {
  kind: ProblemKind;
  table?: string;
  file?: string;
  expected?: string | number;
  found?: string | number;
  /** The whole problem in one line, for logs and people. */
  message: string;
}

/** A CSV entry as read from the archive: its bytes, data rows (records less the header) and sha256. */
export interface ArchivedCsv {
  file: string;
  bytes: number;
  rows: number;
  sha256: string;
}

/** A table of the manifest found in the archive, with what the archive holds for it. */
export interface CheckedTable extends ArchivedCsv {
  table: string;
}

const COMPARED = ['rows', 'bytes', 'sha256'] as const;

/** A definition entry (definition.json, schema.sql) as read from the archive. */
export interface ArchivedDefinitionFile {
  file: string;
  bytes: Buffer;
  sha256: string;
}

/**
 * Compares the CSVs and definition files found in the archive with its manifest, both ways. A
 * manifest of an export made before tarballs carried definitions lists none, and its archive has none.
 */
export function compareWithManifest(
  manifestBytes: Buffer | undefined,
  archived: ArchivedCsv[],
  definitionFiles: ArchivedDefinitionFile[] = [],
): { schema?: string; tables: CheckedTable[]; problems: VerificationProblem[] } {
  if (!manifestBytes) {
    return { tables: [], problems: [{ kind: 'manifest-missing', message: 'The archive has no <schema>/manifest.json: its CSV files cannot be checked' }] };
  }
  const parsed = parseManifest(manifestBytes);
  if ('error' in parsed) return { tables: [], problems: [{ kind: 'manifest-invalid', message: `manifest.json is not a valid manifest: ${parsed.error}` }] };
  const { manifest } = parsed;

  const problems: VerificationProblem[] = [];
  const tables: CheckedTable[] = [];
  const byFile = new Map(archived.map((csv) => [csv.file, csv]));
  const listed = new Set<string>();
  for (const expected of manifest.tables) {
    listed.add(expected.file);
    const found = byFile.get(expected.file);
    const { table, file } = expected;
    if (!found) {
      problems.push({ kind: 'missing-from-archive', table, file, message: `${table} (${file}): in the manifest but not in the archive` });
      continue;
    }
    tables.push({ table, ...found });
    for (const field of COMPARED) {
      if (found[field] !== expected[field]) {
        problems.push({
          kind: field,
          table,
          file,
          expected: expected[field],
          found: found[field],
          message: `${table} (${file}): ${field} expected ${expected[field]}, found ${found[field]}`,
        });
      }
    }
  }
  const listedDefinitions = new Set<string>();
  for (const expected of manifest.definitionFiles ?? []) {
    listedDefinitions.add(expected.file);
    const found = definitionFiles.find((entry) => entry.file === expected.file);
    if (!found) {
      problems.push({ kind: 'missing-from-archive', file: expected.file, message: `${expected.file}: in the manifest but not in the archive` });
    } else if (found.bytes.length !== expected.bytes || found.sha256 !== expected.sha256) {
      const field = found.bytes.length !== expected.bytes ? 'bytes' : 'sha256';
      const [want, got] = field === 'bytes' ? [expected.bytes, found.bytes.length] : [expected.sha256, found.sha256];
      problems.push({ kind: field, file: expected.file, expected: want, found: got, message: `${expected.file}: ${field} expected ${want}, found ${got}` });
    }
  }
  for (const entry of definitionFiles) {
    if (!listedDefinitions.has(entry.file)) problems.push({ kind: 'not-in-manifest', file: entry.file, message: `${entry.file}: in the archive but not in the manifest` });
  }
  for (const csv of archived) {
    if (listed.has(csv.file)) continue;
    const table = tableNameOf(csv.file);
    problems.push({ kind: 'not-in-manifest', table, file: csv.file, found: csv.rows, message: `${table} (${csv.file}): in the archive (${csv.rows} rows) but not in the manifest` });
  }
  return { schema: manifest.schema, tables, problems };
}

function parseManifest(bytes: Buffer): { manifest: SchemaManifest } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { error: (error as Error).message };
  }
  const manifest = value as Partial<SchemaManifest> | null;
  if (typeof manifest?.schema !== 'string') return { error: 'no "schema"' };
  if (!Array.isArray(manifest.tables)) return { error: 'no "tables" list' };
  for (const [index, entry] of (manifest.tables as unknown[]).entries()) {
    const t = entry as Partial<TableSummary> | null;
    const ok =
      typeof t?.table === 'string' &&
      typeof t.file === 'string' &&
      Number.isSafeInteger(t.rows) &&
      Number.isSafeInteger(t.bytes) &&
      typeof t.sha256 === 'string' &&
      /^[0-9a-f]{64}$/.test(t.sha256);
    if (!ok) return { error: `tables[${index}] lacks a table, file, rows, bytes or sha256: ${JSON.stringify(entry)}` };
  }
  if (manifest.definitionFiles !== undefined) {
    if (!Array.isArray(manifest.definitionFiles)) return { error: '"definitionFiles" is not a list' };
    for (const [index, entry] of (manifest.definitionFiles as unknown[]).entries()) {
      const f = entry as Partial<DefinitionFileSummary> | null;
      const ok = typeof f?.file === 'string' && Number.isSafeInteger(f.bytes) && typeof f.sha256 === 'string' && /^[0-9a-f]{64}$/.test(f.sha256);
      if (!ok) return { error: `definitionFiles[${index}] lacks a file, bytes or sha256: ${JSON.stringify(entry)}` };
    }
  }
  return { manifest: manifest as SchemaManifest };
}

/** The table name behind `<schema>/<table>.csv`, undoing archive-entry-name.ts's percent-encoding. */
function tableNameOf(file: string): string {
  const base = file.slice(file.lastIndexOf('/') + 1).replace(/\.csv$/, '');
  return base.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
