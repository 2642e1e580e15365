import { DEFAULT_LIST_LIMIT, isListLimit, isRunStatus, MAX_LIST_LIMIT, RUN_STATUSES } from '../runs/run';
import type { RunStatus } from '../runs/run';

/** A query parameter of GET /jobs/{job}/runs that cannot be used; its message is safe to show the caller. */
export class ListRunsQueryError extends RangeError {
  override readonly name = 'ListRunsQueryError';
}

const LIST_PARAMETERS = ['status', 'limit'];

/**
 * Reads `?status=&limit=` of GET /jobs/{job}/runs (API Gateway gives null when there is no query
 * string). Unknown parameters are refused rather than ignored, so a misspelt filter is not
 * mistaken for "no filter".
 */
export function parseListRunsQuery(query: Record<string, string | undefined> | null): { status?: RunStatus; limit: number } {
  const given = Object.entries(query ?? {}).filter((entry): entry is [string, string] => entry[1] !== undefined);
  const unknown = given.map(([name]) => name).filter((name) => !LIST_PARAMETERS.includes(name));
  if (unknown.length > 0) {
    throw new ListRunsQueryError(
      `Unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u)).join(', ')}: only status and limit are accepted`,
    );
  }
  const values = Object.fromEntries(given);

  let status: RunStatus | undefined;
  if (values.status !== undefined) {
    if (!isRunStatus(values.status)) {
      throw new ListRunsQueryError(`status must be one of ${RUN_STATUSES.join(', ')}, not ${JSON.stringify(values.status)}`);
    }
    status = values.status;
  }

  let limit = DEFAULT_LIST_LIMIT;
  if (values.limit !== undefined) {
    // Digits only: Number() would also take '', ' 5', '1e2' and '0x10'.
    if (!/^\d{1,4}$/.test(values.limit) || !isListLimit(Number(values.limit))) {
      throw new ListRunsQueryError(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT}, not ${JSON.stringify(values.limit)}`);
    }
    limit = Number(values.limit);
  }

  return status === undefined ? { limit } : { status, limit };
}
