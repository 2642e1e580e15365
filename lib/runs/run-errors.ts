import type { JobName, RunStatus } from './run';

/** The run ledger's errors: what a caller may catch and explain (HTTP handlers map them to answers). */

/** Another run of the job is queued or running, so no new one may start. */
export class ActiveRunError extends Error {
  override readonly name = 'ActiveRunError';
  constructor(
    readonly job: JobName,
    readonly activeRunId: string,
  ) {
    super(`${/^[aeiou]/.test(job) ? 'An' : 'A'} ${job} run is already queued or running: ${activeRunId}`);
  }
}

/** No run has this id. */
export class RunNotFoundError extends Error {
  override readonly name = 'RunNotFoundError';
  constructor(readonly runId: string) {
    super(`No run has the id ${runId}`);
  }
}

/** The run is not in a state that allows what was asked (e.g. succeeding a run that is not running). */
export class RunStateError extends Error {
  override readonly name = 'RunStateError';
  constructor(
    readonly runId: string,
    readonly status: RunStatus,
    action: string,
    /** Why, when its status alone does not say. */
    readonly reason?: string,
  ) {
    super(`Cannot ${action} run ${runId}: ${reason ?? `it is ${status}`}`);
  }
}

/** The ledger's table is missing: the database was never migrated. Says how to fix it. */
export class LedgerNotMigratedError extends Error {
  override readonly name = 'LedgerNotMigratedError';
  constructor() {
    super('The run ledger table jobs.runs does not exist in this database: run `npm run migrate` with DATABASE_URL set to it');
  }
}
