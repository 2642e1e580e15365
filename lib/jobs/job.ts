import type { Sql } from 'postgres';
import type { JobRequest } from './job-request';

export interface JobContext {
  sql: Sql;
  /** The run being carried out. */
  runId: string;
  /** Best-effort progress for the run ledger; the caller throttles the writes. */
  reportProgress(progress: unknown): void;
  /** When this attempt must have ended (epoch ms): its Lambda's timeout, or the inline lease. */
  deadline: number;
  /** Aborted when the run is cancelled (POST /jobs/runs/{id}/cancel): the job stops, undoing what it can. */
  signal?: AbortSignal;
}

/** A job as its worker carries it out: the request side (JobRequest) and the run. */
export interface Job<Params extends Record<string, unknown> = Record<string, unknown>> extends JobRequest<Params> {
  /**
   * Does the work; resolves with the result recorded on the run, rejects if the run failed. A job
   * that fanned the run out into steps resolves with STEPS_CLOSE_THE_RUN: the run's last step
   * records how it ended, not the worker.
   */
  run(params: Params, context: JobContext): Promise<unknown>;
  /** Rows and bytes of a successful run's result, for its metrics (see lib/metrics.ts). */
  measure?(result: unknown): { rows?: number; bytes?: number };
}

export const STEPS_CLOSE_THE_RUN = Symbol('the steps close the run');
