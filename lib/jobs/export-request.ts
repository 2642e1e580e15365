import type { ExportSettings } from '../config';
import type { JobRequest } from './job-request';
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

/** What exportApi needs of the export: its name and its params, checked against the configured schemas. */
export function createExportRequest(settings: Pick<ExportSettings, 'schemas'>): JobRequest<ExportParams> {
  return { name: 'export', parseParams: (input) => parseExportParams(input, settings.schemas) };
}
