import type { ExportSettings } from '../config';
import type { JobRequest } from './job-request';
import { InvalidParamsError, rejectUnknownFields } from './job-params';

export interface ExportParams extends Record<string, unknown> {
  /** A subset of the configured schemas, e.g. to re-run one that failed. */
  schemas?: string[];
  /** Restore the run's schemas into the reporting database once its tarballs are verified (the restore job). */
  restore?: boolean;
}

export function parseExportParams(input: Record<string, unknown> | undefined, configured: readonly string[]): ExportParams {
  if (input === undefined) return {};
  rejectUnknownFields(input, ['schemas', 'restore']);
  if ('restore' in input && typeof input.restore !== 'boolean') throw new InvalidParamsError('"restore" must be true or false');
  return {
    ...('schemas' in input && { schemas: parseSchemasParam(input.schemas, configured, 'exported') }),
    ...(input.restore === true && { restore: true }),
  };
}

/**
 * A request's `schemas`: a non-empty list of the configured schemas, each once, returned in the
 * configured order whatever order the caller gave. `what`: the schemas' role, for the message.
 */
export function parseSchemasParam(schemas: unknown, configured: readonly string[], what: string): string[] {
  if (!Array.isArray(schemas) || schemas.length === 0 || !schemas.every((s): s is string => typeof s === 'string')) {
    throw new InvalidParamsError('"schemas" must be a non-empty list of schema names');
  }
  const unknown = schemas.filter((s) => !configured.includes(s));
  if (unknown.length > 0) {
    throw new InvalidParamsError(
      `"schemas" names ${unknown.map((s) => JSON.stringify(s)).join(', ')}, not among the ${what} schemas: ${configured.join(', ')}`,
    );
  }
  if (new Set(schemas).size !== schemas.length) throw new InvalidParamsError('"schemas" names a schema twice');
  return configured.filter((s) => schemas.includes(s));
}

/** What exportApi needs of the export: its name and its params, checked against the configured schemas. */
export function createExportRequest(settings: Pick<ExportSettings, 'schemas'>): JobRequest<ExportParams> {
  return { name: 'export', parseParams: (input) => parseExportParams(input, settings.schemas) };
}
