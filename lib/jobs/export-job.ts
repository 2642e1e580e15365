import type { ExportSettings } from '../config';
import { logger } from '../logger';
import { createStepLedger } from '../runs/step-ledger';
import type { RunStep } from '../runs/step-ledger';
import type { StepEvent } from './dispatch';
import { STEPS_CLOSE_THE_RUN } from './job';
import { recordRunClosed } from './run-step-worker';
import type { Job } from './job';
import { createExportRequest } from './export-request';
import type { ExportParams } from './export-request';

/**
 * Hands the queued steps of a run to their workers. `lambda`: one asynchronous invocation each;
 * `inline`: carried out in this process, EXPORT_CONCURRENCY at once, resolving when all have ended.
 * Rejects for a step whose hand-over failed (the others are still handed over).
 */
export type StartSteps = (steps: readonly StepEvent[]) => Promise<PromiseSettledResult<void>[]>;

/**
 * The export as a coordinator: it records one step per schema and hands each to the schema
 * worker, then leaves the run to them (STEPS_CLOSE_THE_RUN). A step it could not hand over fails
 * at once, naming the cause. Taken over by Lambda's retry of the same request, it hands over
 * again only the steps still queued.
 */
export function createExportJob(settings: Pick<ExportSettings, 'schemas'>, startSteps: StartSteps): Job<ExportParams> {
  return {
    ...createExportRequest(settings),
    async run(params, { sql, runId }) {
      const ledger = createStepLedger(sql);
      const steps = await ledger.addSteps(runId, params.schemas ?? settings.schemas);
      const queued = steps.filter((step) => step.status === 'queued');
      logger.info('Export fanned out', { runId, steps: steps.map((step) => step.name), handedOver: queued.map((step) => step.name) });
      const handedOver = await startSteps(queued.map((step) => ({ runId, step: step.name })));
      for (const [index, outcome] of handedOver.entries()) {
        if (outcome.status === 'fulfilled') continue;
        const step: RunStep = queued[index]!;
        const cause = outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason);
        logger.error('Could not hand the step to its worker', { runId, step: step.name, error: cause });
        await ledger.finish(step.id, { status: 'failed', error: `Could not hand the step to its worker: ${cause}`, final: true });
      }
      // Nothing left to run (a late redelivery found every step ended): the run ends here.
      if (queued.length === 0) {
        const closed = await ledger.closeIfDone(runId);
        if (closed) recordRunClosed(closed);
      }
      return STEPS_CLOSE_THE_RUN;
    },
  };
}
