import type { DispatchSettings } from '../config';
import { logger } from '../logger';
import type { RunStep, StepLedger } from '../runs/step-ledger';
import { createLambdaDispatch } from './dispatch';
import type { StepEvent } from './dispatch';
import { createInlineDispatch } from './inline-dispatch';

/**
 * Hands the queued steps of a run to their workers. `lambda`: one asynchronous invocation each;
 * `inline`: carried out in this process, `concurrency` at once, resolving when all have ended.
 * Rejects for a step whose hand-over failed (the others are still handed over).
 */
export type StartSteps = (steps: readonly StepEvent[]) => Promise<PromiseSettledResult<void>[]>;

/**
 * How a coordinator (the export's, the restore's) hands steps over: `lambda`, an asynchronous invocation of its schema worker
 * per step (Lambda runs up to its reserved concurrency at once and queues the rest); `inline`,
 * carried out here, `concurrency` at once, resolving when they have all ended.
 */
export function createStartSteps(settings: DispatchSettings, concurrency: number, runInline: (event: StepEvent) => Promise<unknown>): StartSteps {
  if (settings.mode === 'lambda') {
    const invoke = createLambdaDispatch<StepEvent>(settings);
    return async (steps) => Promise.allSettled(steps.map((step) => invoke(step)));
  }
  const dispatch = createInlineDispatch<StepEvent>(runInline);
  return async (steps) => {
    const outcomes: PromiseSettledResult<void>[] = new Array(steps.length);
    let next = 0;
    const lane = async () => {
      while (next < steps.length) {
        const index = next++;
        outcomes[index] = await dispatch(steps[index]!).then(
          (value) => ({ status: 'fulfilled', value }) as const,
          (reason: unknown) => ({ status: 'rejected', reason }) as const,
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, steps.length) }, lane));
    return outcomes;
  };
}

/** Fails, for good, each step whose hand-over failed, naming the cause. */
export async function failStepsNotHandedOver(ledger: StepLedger, runId: string, queued: RunStep[], outcomes: PromiseSettledResult<void>[]): Promise<void> {
  for (const [index, outcome] of outcomes.entries()) {
    if (outcome.status === 'fulfilled') continue;
    const step: RunStep = queued[index]!;
    const cause = outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason);
    logger.error('Could not hand the step to its worker', { runId, step: step.name, error: cause });
    await ledger.finish(step.id, { status: 'failed', error: `Could not hand the step to its worker: ${cause}`, final: true });
  }
}
