import { describe, expect, it } from 'vitest';
import { parseWorkerEvent, WorkerEventError } from '../../lib/jobs/worker-event';

const runId = '0b5e3a52-7a4c-4c8e-9d67-2f1b2f5f6c11';

describe('parseWorkerEvent', () => {
  it('reads a run event from the API function', () => {
    expect(parseWorkerEvent({ runId })).toEqual({ kind: 'run', runId });
  });

  it('reads our schedule input and EventBridge’s own scheduled event as a schedule', () => {
    expect(parseWorkerEvent({ trigger: 'schedule' })).toEqual({ kind: 'new', trigger: 'schedule', input: undefined });
    expect(parseWorkerEvent({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} })).toEqual({
      kind: 'new',
      trigger: 'schedule',
      input: undefined,
    });
  });

  it('reads nothing, an empty object or job fields as a manual run', () => {
    expect(parseWorkerEvent(undefined)).toEqual({ kind: 'new', trigger: 'manual', input: undefined });
    expect(parseWorkerEvent('')).toEqual({ kind: 'new', trigger: 'manual', input: undefined });
    expect(parseWorkerEvent({})).toEqual({ kind: 'new', trigger: 'manual', input: undefined });
    expect(parseWorkerEvent({ schemas: ['crm'] })).toEqual({ kind: 'new', trigger: 'manual', input: { schemas: ['crm'] } });
  });

  it.each([
    ['a string', 'go'],
    ['a number', 7],
    ['an array', [runId]],
    ['a bad run id', { runId: 'nope' }],
    ['a run id that is not a string', { runId: 42 }],
    ['a run event with more fields', { runId, schemas: ['crm'] }],
    ['another trigger', { trigger: 'http' }],
    ['a schedule with more fields', { trigger: 'schedule', schemas: ['crm'] }],
  ])('refuses %s', (_label, event) => {
    expect(() => parseWorkerEvent(event)).toThrow(WorkerEventError);
  });
});
