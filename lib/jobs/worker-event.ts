import { isUuid } from '../runs/run';

/** A worker invocation that is not one of the shapes below; thrown before any data is touched. */
export class WorkerEventError extends Error {
  override readonly name = 'WorkerEventError';
}

export type WorkerRequest =
  /** From the API function: carry out a run the API already recorded. */
  | { kind: 'run'; runId: string }
  /** From a schedule or `sls invoke local`: record a run of our own first. */
  | { kind: 'new'; trigger: 'schedule' | 'manual'; input: Record<string, unknown> | undefined };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads what invoked the worker. Shapes accepted:
 * - `{ "runId": "<uuid>" }` from the API function;
 * - `{ "trigger": "schedule" }`, the input serverless.yml gives every schedule, or EventBridge's own
 *   `Scheduled Event` should a schedule be declared without input;
 * - nothing, `{}`, or the job's own fields (export: `{ "schemas": [...] }`) for a manual run.
 */
export function parseWorkerEvent(event: unknown): WorkerRequest {
  if (event === undefined || event === null || event === '') return { kind: 'new', trigger: 'manual', input: undefined };
  if (!isPlainObject(event)) {
    throw new WorkerEventError(`The worker event must be a JSON object, not ${Array.isArray(event) ? 'an array' : typeof event}`);
  }
  if ('runId' in event) {
    const extra = Object.keys(event).filter((k) => k !== 'runId');
    if (extra.length > 0) throw new WorkerEventError(`A run event has only "runId"; it also had ${extra.join(', ')}`);
    if (typeof event.runId !== 'string' || !isUuid(event.runId)) throw new WorkerEventError('"runId" must be a uuid');
    return { kind: 'run', runId: event.runId };
  }
  if (event.source === 'aws.events' && event['detail-type'] === 'Scheduled Event') {
    return { kind: 'new', trigger: 'schedule', input: undefined };
  }
  if ('trigger' in event) {
    const extra = Object.keys(event).filter((k) => k !== 'trigger');
    if (event.trigger !== 'schedule' || extra.length > 0) {
      throw new WorkerEventError('A schedule event is exactly { "trigger": "schedule" }');
    }
    return { kind: 'new', trigger: 'schedule', input: undefined };
  }
  return { kind: 'new', trigger: 'manual', input: Object.keys(event).length ? event : undefined };
}
