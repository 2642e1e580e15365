import type { Readable } from 'node:stream';
import { compareWithManifest } from './compare-with-manifest';
import type { ArchivedCsv, CheckedTable, VerificationProblem } from './compare-with-manifest';
import { readExportTarball } from './read-export-tarball';

export type { ArchivedCsv, CheckedTable, VerificationProblem } from './compare-with-manifest';
export { NotGzipError } from './read-export-tarball';

export interface TarballVerification {
  /** `unreadable`: not a gzip file at all (or empty); nothing inside could be checked. */
  status: 'verified' | 'failed' | 'unreadable';
  /** The schema the manifest names, when it could be read. */
  schema?: string;
  /** Each CSV read whole from the archive, with what was counted. */
  csvFiles: ArchivedCsv[];
  /** The manifest's tables found in the archive, in the manifest's order (empty without a manifest). */
  tables: CheckedTable[];
  problems: VerificationProblem[];
  compressedBytes: number;
}

/**
 * Checks an export tarball as it streams past, in bounded memory with nothing written to disk
 * (read-export-tarball.ts): per CSV its bytes, CSV records and sha256, and the definition's bytes
 * and sha256, compared with `<schema>/manifest.json` both ways.
 *
 * Failures to read the source itself (a dropped connection) are thrown; everything wrong with the
 * tarball's content is returned as problems.
 */
export async function verifyTarball(source: Readable | AsyncIterable<Buffer>): Promise<TarballVerification> {
  const read = await readExportTarball(source);
  const { csvFiles, compressedBytes, broken } = read;
  if (broken?.kind === 'not-gzip') return { status: 'unreadable', csvFiles, tables: [], problems: [broken], compressedBytes };
  // A cut or corrupted stream explains whatever else is missing; comparing further would only add noise.
  if (broken) return { status: 'failed', csvFiles, tables: [], problems: [broken, ...read.problems], compressedBytes };

  const compared = compareWithManifest(read.manifest?.bytes, csvFiles, [read.definition, read.schemaSql].filter((entry) => entry !== undefined));
  const problems = [...read.problems, ...compared.problems];
  return { status: problems.length === 0 ? 'verified' : 'failed', schema: compared.schema, csvFiles, tables: compared.tables, problems, compressedBytes };
}
