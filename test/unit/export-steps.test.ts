import { describe, expect, it } from 'vitest';
import { stepMetadata } from '../../lib/jobs/export-steps';
import { createStartSteps } from '../../lib/jobs/start-steps';
import { markFailureRecordedOnRun } from '../../lib/jobs/failure-recorded-on-run';
import { parseStepEvent } from '../../lib/jobs/run-step-worker';
import { WorkerEventError } from '../../lib/jobs/worker-event';
import { runEnding, totalSteps } from '../../lib/runs/step-ledger';
import type { RunStep } from '../../lib/runs/step-ledger';

const RUN_ID = '0b5f3a52-6f7e-4f53-9a55-3c3f4bfb1d0e';

function step(name: string, status: RunStep['status'], extra: Partial<RunStep> = {}): RunStep {
  return {
    id: `${name}-id`, runId: RUN_ID, position: 0, name, status, attempts: 1, queuedAt: '', startedAt: null, finishedAt: null,
    leaseExpiresAt: null, lambdaRequestId: null, progress: null, result: null, error: null, verification: null, snapshotImportedAt: null, input: null, stagedAt: null, ...extra,
  };
}

describe('parseStepEvent', () => {
  it('takes exactly { runId, step }', () => {
    expect(parseStepEvent({ runId: RUN_ID, step: 'crm' })).toEqual({ runId: RUN_ID, step: 'crm' });
  });

  it.each([null, 'crm', [], { runId: RUN_ID }, { runId: 'x', step: 'crm' }, { runId: RUN_ID, step: '' }, { runId: RUN_ID, step: 'crm', extra: 1 }])(
    'refuses %j',
    (event) => {
      expect(() => parseStepEvent(event)).toThrow(WorkerEventError);
    },
  );
});

describe('how a run ends by its steps', () => {
  const result = { key: 'k', tables: 2, rows: 10, bytes: 100, compressedBytes: 20 };

  it('succeeds when every step succeeded', () => {
    expect(runEnding([step('water', 'succeeded'), step('crm', 'succeeded')])).toEqual({ status: 'succeeded', error: null });
  });

  it('fails naming each failed step with its cause; a timed-out step makes it timed_out', () => {
    expect(runEnding([step('water', 'failed', { error: 'boom' }), step('crm', 'succeeded')])).toEqual({
      status: 'failed',
      error: '1 of 2 steps did not succeed. water failed: boom',
    });
    expect(runEnding([step('water', 'failed', { error: 'boom' }), step('crm', 'timed_out', { error: 'lease' })])).toEqual({
      status: 'timed_out',
      error: '2 of 2 steps did not succeed. water failed: boom; crm timed out: lease',
    });
  });

  it('totals finished steps by their result and running ones by their progress', () => {
    const totals = totalSteps([
      step('water', 'succeeded', { result }),
      step('returns', 'running', { progress: { tablesDone: 1, rows: 5, bytes: 50 } }),
      step('crm', 'queued'),
    ]);
    expect(totals).toEqual({ schemasDone: 1, schemasTotal: 3, tables: 3, rows: 15, bytes: 150, compressedBytes: 20 });
  });
});

describe('handing steps over in-process', () => {
  it('runs at most `concurrency` at once, each to its end, and reports each hand-over', async () => {
    let running = 0;
    let most = 0;
    const start = createStartSteps({ mode: 'inline' }, 2, async (event) => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 10));
      running -= 1;
      if (event.step === 'idm') throw markFailureRecordedOnRun(new Error('recorded on the step'));
      if (event.step === 'permit') throw new Error('no database');
    });
    const names = ['water', 'returns', 'crm', 'idm', 'permit'];
    const outcomes = await start(names.map((name) => ({ runId: RUN_ID, step: name })));
    expect(most).toBe(2);
    // A step that ran and failed was handed over; one that never took the step was not.
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
  });
});

describe("a step's object metadata", () => {
  it('names the run and the schema, leaving out a schema name that HTTP headers cannot carry', () => {
    expect(stepMetadata('r1', 'crm_v2')).toEqual({ 'run-id': 'r1', schema: 'crm_v2' });
    expect(stepMetadata('r1', 'Awkward "Schema"')).toEqual({ 'run-id': 'r1', schema: 'Awkward "Schema"' });
    expect(stepMetadata('r1', 'Awkward "Schema" Ünïcode Ω')).toEqual({ 'run-id': 'r1' });
    expect(stepMetadata('r1', 'line\nbreak')).toEqual({ 'run-id': 'r1' });
  });
});
