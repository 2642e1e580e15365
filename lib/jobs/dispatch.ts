import type { InvokeCommand as InvokeCommandClass, LambdaClient } from '@aws-sdk/client-lambda';
import type { DispatchSettings } from '../config';

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
 * An asynchronous Lambda invoke (`InvocationType: 'Event'`), which returns once Lambda has queued
 * the event, so the API can answer at once and the worker runs on after it. The Lambda client is
 * loaded on the first hand-over, not at cold start: @aws-sdk/client-lambda alone takes about 60 ms
 * to load here, and an API request that is refused (400, 405, 409) never needs it.
 * (In-process hand-over, for local use and tests, is lib/jobs/inline-dispatch.ts.)
 */
export function createLambdaDispatch<Event extends RunEvent = RunEvent>(
  settings: Extract<DispatchSettings, { mode: 'lambda' }>,
  lambda?: Pick<LambdaClient, 'send'>,
): Dispatch<Event> {
  let client: Promise<{ send: LambdaClient['send']; InvokeCommand: typeof InvokeCommandClass }> | undefined;
  const load = () =>
    (client ??= (async () => {
      const [{ InvokeCommand }, { createLambdaClient }] = await Promise.all([import('@aws-sdk/client-lambda'), import('../clients/lambda')]);
      const sender = lambda ?? createLambdaClient(settings.endpoint);
      return { send: sender.send.bind(sender) as LambdaClient['send'], InvokeCommand };
    })());
  return async (event) => {
    let statusCode: number | undefined;
    try {
      const { send, InvokeCommand } = await load();
      ({ StatusCode: statusCode } = await send(
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
