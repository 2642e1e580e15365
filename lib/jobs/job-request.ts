import type { JobName } from '../runs/run-ledger';

/**
 * The request side of a job: its name and how its parameters are read. All an API function
 * needs of a job, so the API bundle never holds the code that carries the job out (see Job).
 */
export interface JobRequest<Params extends Record<string, unknown> = Record<string, unknown>> {
  name: JobName;
  /** Validates a request body or a manual invocation's fields; throws InvalidParamsError. */
  parseParams(input: Record<string, unknown> | undefined): Params;
}
