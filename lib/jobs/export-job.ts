import type { ExportSettings } from '../config';
import { logger } from '../logger';
import { createStepLedger } from '../runs/step-ledger';
import type { RunStep } from '../runs/step-ledger';
import type { StepEvent } from './dispatch';
import { STEPS_CLOSE_THE_RUN } from './job';
import type { Job } from './job';
import { InvalidParamsError, rejectUnknownFields } from './job-params';

export interface ExportParams extends Record<string, unknown> {
  /** A subset of the configured schemas, e.g. to re-run one that failed. */
  schemas?: string[];
}

export function parseExportParams(input: Record<string, unknown> | undefined, configured: readonly string[]): ExportParams {
  if (input === undefined) return {};
  rejectUnknownFields(input, ['schemas']);
  if (!('schemas' in input)) return {};
  const { schemas } = input;
  if (!Array.isArray(schemas) || schemas.length === 0 || !schemas.every((s): s is string => typeof s === 'string')) {
    throw new InvalidParamsError('"schemas" must be a non-empty list of schema names');
  }
  const unknown = schemas.filter((s) => !configured.includes(s));
  if (unknown.length > 0) {
    throw new InvalidParamsError(
      `"schemas" names ${unknown.map((s) => JSON.stringify(s)).join(', ')}, not among the exported schemas: ${configured.join(', ')}`,
    );
  }
  if (new Set(schemas).size !== schemas.length) throw new InvalidParamsError('"schemas" names a schema twice');
  // The configured order, whatever order the caller gave.
  return { schemas: configured.filter((s) => schemas.includes(s)) };
}

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
    name: 'export',
    parseParams: (input) => parseExportParams(input, settings.schemas),
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
      if (queued.length === 0) await ledger.closeIfDone(runId);
      return STEPS_CLOSE_THE_RUN;
    },
  };
}
