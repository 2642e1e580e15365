import type { RestoreSettings } from '../config';
import { isUuid } from '../runs/run';
import { parseSchemasParam } from './export-request';
import type { JobRequest } from './job-request';
import { InvalidParamsError, rejectUnknownFields } from './job-params';

export interface RestoreParams extends Record<string, unknown> {
  /**
   * The schemas to restore (default: the configured ones). Naming them also allows tarballs of
   * different export runs: a restore of every schema takes them from one export run only.
   */
  schemas?: string[];
  /** Restore only tarballs this export run wrote (the restore an export starts sets it). */
  exportRunId?: string;
}

export function parseRestoreParams(input: Record<string, unknown> | undefined, configured: readonly string[]): RestoreParams {
  if (input === undefined) return {};
  rejectUnknownFields(input, ['schemas', 'exportRunId']);
  if ('exportRunId' in input && (typeof input.exportRunId !== 'string' || !isUuid(input.exportRunId))) {
    throw new InvalidParamsError('"exportRunId" must be the uuid of an export run');
  }
  return {
    ...('schemas' in input && { schemas: parseSchemasParam(input.schemas, configured, 'exported') }),
    ...(typeof input.exportRunId === 'string' && { exportRunId: input.exportRunId.toLowerCase() }),
  };
}

/** What restoreApi needs of the restore: its name and its params, checked against the configured schemas. */
export function createRestoreRequest(settings: Pick<RestoreSettings, 'schemas'>): JobRequest<RestoreParams> {
  return { name: 'restore', parseParams: (input) => parseRestoreParams(input, settings.schemas) };
}
