import { logger } from '../logger';
import { DispatchError } from './dispatch';
import type { Dispatch, RunEvent } from './dispatch';
import { isFailureRecordedOnRun } from './failure-recorded-on-run';

/**
 * Runs the worker in this process and awaits it: the export coordinator's steps under `sls invoke
 * local` or JOB_DISPATCH=inline, and the local and test wiring of the API functions
 * (lib/jobs/local-job-functions.ts). Never imported by an API function, whose bundle would
 * otherwise hold the worker. A job that fails inline has recorded its failure on the run itself,
 * so the hand-over still succeeded; a worker that fails before taking the run (e.g. no database)
 * rejects as a failed hand-over.
 */
export function createInlineDispatch<Event extends RunEvent = RunEvent>(runInline: (event: Event) => Promise<unknown>): Dispatch<Event> {
  return async (event) => {
    try {
      await runInline(event);
    } catch (error) {
      // Failed before taking the run (bad event, no database): the work was not handed over.
      if (!isFailureRecordedOnRun(error)) throw new DispatchError(`The inline worker did not take the run: ${(error as Error).message}`);
      logger.error('Inline worker failed; the run records the cause', { runId: event.runId, event: JSON.stringify(event), error: error as Error });
    }
  };
}
