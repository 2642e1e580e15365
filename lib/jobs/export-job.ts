import type { S3Client } from '@aws-sdk/client-s3';
import type { ExportSettings } from '../config';
import { assertExportSucceeded, exportDatabase } from '../export/export-database';
import type { Job } from './job';
import { InvalidParamsError, rejectUnknownFields } from './job-params';

export interface ExportParams extends Record<string, unknown> {
  /** A subset of the configured schemas, e.g. to re-run one that failed. */
  schemas?: string[];
}

export function parseExportParams(input: Record<string, unknown> | undefined, configured: readonly string[]): ExportParams {
  if (input === undefined) return {};
  rejectUnknownFields(input, ['schemas']);
  if (!('schemas' in input)) return {};
  const { schemas } = input;
  if (!Array.isArray(schemas) || schemas.length === 0 || !schemas.every((s): s is string => typeof s === 'string')) {
    throw new InvalidParamsError('"schemas" must be a non-empty list of schema names');
  }
  const unknown = schemas.filter((s) => !configured.includes(s));
  if (unknown.length > 0) {
    throw new InvalidParamsError(
      `"schemas" names ${unknown.map((s) => JSON.stringify(s)).join(', ')}, not among the exported schemas: ${configured.join(', ')}`,
    );
  }
  if (new Set(schemas).size !== schemas.length) throw new InvalidParamsError('"schemas" names a schema twice');
  // The configured order, whatever order the caller gave.
  return { schemas: configured.filter((s) => schemas.includes(s)) };
}

/**
 * `removeLeftoverRunFolders`: clear the temp folders of stopped runs before each run; only where a
 * run has its temp folder to itself (see removeLeftoverRunFolders).
 */
export function createExportJob(settings: ExportSettings, s3: S3Client, { removeLeftoverRunFolders = false } = {}): Job<ExportParams> {
  return {
    name: 'export',
    parseParams: (input) => parseExportParams(input, settings.schemas),
    async run(params, { sql, reportProgress }) {
      const result = await exportDatabase(
        { bucket: settings.bucket, prefix: settings.prefix, schemas: params.schemas ?? settings.schemas, tableParallelism: settings.tableParallelism },
        { sql, s3, removeLeftoverRunFolders },
        reportProgress,
      );
      assertExportSucceeded(result);
      return result;
    },
  };
}
