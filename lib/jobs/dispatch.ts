import { InvokeCommand } from '@aws-sdk/client-lambda';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { DispatchSettings } from '../config';
import { createLambdaClient } from '../clients/lambda';
import { logger } from '../logger';
import { isFailureRecordedOnRun } from './failure-recorded-on-run';

/** The event an API function hands its worker. */
export interface RunEvent {
  runId: string;
}

/** The event the export's coordinator hands the schema worker: one step of a run. */
export interface StepEvent {
  runId: string;
  /** The step's name: the schema. */
  step: string;
}

/** Hands a run (or a step of one) to its worker; rejects if the worker did not take it. */
export type Dispatch<Event extends RunEvent = RunEvent> = (event: Event) => Promise<void>;

export class DispatchError extends Error {
  override readonly name = 'DispatchError';
}

/**
 * `lambda`: an asynchronous Lambda invoke (`InvocationType: 'Event'`), which returns once Lambda
 * has queued the event, so the API can answer at once and the worker runs on after it.
 * `inline`: runs the worker in this process and awaits it (local use and tests). A job that
 * fails inline has recorded its failure on the run itself, so the hand-over still succeeded; a
 * worker that fails before taking the run (e.g. no database) rejects as a failed hand-over.
 */
export function createDispatch<Event extends RunEvent = RunEvent>(
  settings: DispatchSettings,
  runInline: (event: Event) => Promise<unknown>,
  lambda: LambdaClient | undefined = settings.mode === 'lambda' ? createLambdaClient(settings.endpoint) : undefined,
): Dispatch<Event> {
  if (settings.mode === 'inline') {
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
  const client = lambda ?? createLambdaClient(settings.endpoint);
  return async (event) => {
    let statusCode: number | undefined;
    try {
      ({ StatusCode: statusCode } = await client.send(
        new InvokeCommand({
          FunctionName: settings.functionName,
          InvocationType: 'Event',
          Payload: Buffer.from(JSON.stringify(event)),
        }),
      ));
    } catch (error) {
      throw new DispatchError(`Invoking ${settings.functionName} failed: ${(error as Error).message}`);
    }
    if (statusCode !== 202) {
      throw new DispatchError(`Invoking ${settings.functionName} answered ${statusCode ?? 'no status'}, not 202 Accepted`);
    }
  };
}
