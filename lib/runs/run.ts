/**
 * The vocabulary of the run ledger and its validators, with no runtime dependencies, so the
 * ledger, the workers' event parsing and the HTTP handlers share one definition of each word.
 */

export const JOB_NAMES = ['export', 'time-limited', 'restore'] as const;
export type JobName = (typeof JOB_NAMES)[number];

export const TRIGGERS = ['http', 'schedule', 'manual'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'skipped', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/**
 * Who asked for a run (or cancelled it, or paused a schedule). Over HTTP, what API Gateway says of
 * the caller: the API key's id (never the key), the source address and the user agent.
 */
export type RequestedBy =
  | { kind: 'http'; apiKeyId: string | null; sourceIp: string | null; userAgent: string | null }
  | { kind: 'schedule' }
  | { kind: 'manual' }
  /** A restore an export run asked for ({"restore": true}), started when its tarballs were verified. */
  | { kind: 'export'; exportRunId: string };

/** One row of jobs.runs. Times are ISO 8601 strings (UTC, millisecond precision). */
export interface Run {
  id: string;
  job: JobName;
  trigger: Trigger;
  status: RunStatus;
  params: Record<string, unknown>;
  attempts: number;
  requestedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  leaseExpiresAt: string | null;
  progress: unknown;
  result: unknown;
  error: string | null;
  lambdaRequestId: string | null;
  /** An export run: the moment all its tarballs show (its snapshot's start), once taken; otherwise null. */
  asOf: string | null;
  /** Who asked for it; null for runs recorded before this was kept. */
  requestedBy: RequestedBy | null;
  /** Who cancelled it, if it was cancelled. */
  cancelledBy: RequestedBy | null;
}

/** How many runs a listing gives when not told, and at most. */
export const DEFAULT_LIST_LIMIT = 20;
export const MAX_LIST_LIMIT = 100;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A uuid in its canonical hyphenated form (any version), the only form run and step ids take. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function isJobName(value: string): value is JobName {
  return (JOB_NAMES as readonly string[]).includes(value);
}

export function isRunStatus(value: string): value is RunStatus {
  return (RUN_STATUSES as readonly string[]).includes(value);
}

/** A page size for listing runs: a whole number from 1 to MAX_LIST_LIMIT. */
export function isListLimit(limit: number): boolean {
  return Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIST_LIMIT;
}
