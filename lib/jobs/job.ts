import type { Sql } from 'postgres';
import type { JobName } from '../runs/run-ledger';

export interface JobContext {
  sql: Sql;
  /** The run being carried out. */
  runId: string;
  /** Best-effort progress for the run ledger; the caller throttles the writes. */
  reportProgress(progress: unknown): void;
}

/** What the API and worker functions need to know about one job. */
export interface Job<Params extends Record<string, unknown> = Record<string, unknown>> {
  name: JobName;
  /** Validates a request body or a manual invocation's fields; throws InvalidParamsError. */
  parseParams(input: Record<string, unknown> | undefined): Params;
  /**
   * Does the work; resolves with the result recorded on the run, rejects if the run failed. A job
   * that fanned the run out into steps resolves with STEPS_CLOSE_THE_RUN: the run's last step
   * records how it ended, not the worker.
   */
  run(params: Params, context: JobContext): Promise<unknown>;
}

export const STEPS_CLOSE_THE_RUN = Symbol('the steps close the run');
