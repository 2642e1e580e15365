/** The vocabulary of the run ledger, with no runtime dependencies so handlers and validators can share it. */

export const JOB_NAMES = ['export', 'time-limited'] as const;
export type JobName = (typeof JOB_NAMES)[number];

export const TRIGGERS = ['http', 'schedule', 'manual'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'skipped'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

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
}
