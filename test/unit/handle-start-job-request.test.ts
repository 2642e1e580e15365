import { describe, expect, it, vi } from 'vitest';
import { handleStartJobRequest } from '../../lib/jobs/handle-start-job-request';
import type { StartJobEvent } from '../../lib/jobs/handle-start-job-request';
import type { Job } from '../../lib/jobs/job';
import { parseExportParams } from '../../lib/jobs/export-request';
import { ActiveRunError } from '../../lib/runs/run-errors';
import type { Run, RunLedger } from '../../lib/runs/run-ledger';
import { fakeRunLedger } from '../support/fakes';

const runId = '5a0c1d9e-1111-4c8e-9d67-2f1b2f5f6c11';
const otherRunId = '5a0c1d9e-2222-4c8e-9d67-2f1b2f5f6c11';

const job: Job = {
  name: 'export',
  parseParams: (input) => parseExportParams(input, ['water', 'crm']),
  run: async () => ({}),
};

/** A ledger that records the run and its failure; what else a test needs, it gives. */
function fakeLedger(overrides: Partial<RunLedger> = {}): RunLedger {
  return fakeRunLedger({
    enqueue: vi.fn(async () => ({ id: runId }) as Run),
    fail: vi.fn(async () => ({ id: runId, status: 'failed' }) as Run),
    ...overrides,
  });
}

function post(body: string | null, headers: Record<string, string> = { 'Content-Type': 'application/json' }): StartJobEvent {
  return { httpMethod: 'POST', body, isBase64Encoded: false, headers };
}

describe('handleStartJobRequest', () => {
  it('records a queued run, dispatches it and answers 204 with its location', async () => {
    const ledger = fakeLedger();
    const dispatch = vi.fn(async () => {});
    const response = await handleStartJobRequest(job, post('{"schemas":["crm"]}'), { getLedger: async () => ledger, dispatch });
    expect(response.statusCode).toBe(204);
    expect(response.body).toBe('');
    expect(response.headers).toMatchObject({ Location: `/jobs/runs/${runId}` });
    expect(ledger.enqueue).toHaveBeenCalledWith('export', 'http', { schemas: ['crm'] }, undefined, { kind: 'http', apiKeyId: null, sourceIp: null, userAgent: null });
    expect(dispatch).toHaveBeenCalledWith({ runId });
  });

  it('records who asked as API Gateway tells it: the key\'s id, the address and the user agent, never the key', async () => {
    const ledger = fakeLedger();
    const event = {
      ...post(null, { 'User-Agent': 'header-agent' }),
      requestContext: { identity: { apiKey: 'the-secret-key-value', apiKeyId: 'k1a2b3', sourceIp: '203.0.113.9', userAgent: 'curl/8.5.0' } },
    } as unknown as StartJobEvent;
    await handleStartJobRequest(job, event, { getLedger: async () => ledger, dispatch: vi.fn(async () => {}) });
    const requestedBy = vi.mocked(ledger.enqueue).mock.calls[0]![4];
    expect(requestedBy).toEqual({ kind: 'http', apiKeyId: 'k1a2b3', sourceIp: '203.0.113.9', userAgent: 'curl/8.5.0' });
    expect(JSON.stringify(vi.mocked(ledger.enqueue).mock.calls)).not.toContain('the-secret-key-value');
  });

  it('answers 405 with Allow for other methods, touching nothing', async () => {
    const ledger = fakeLedger();
    const response = await handleStartJobRequest(job, { ...post(null), httpMethod: 'GET' }, { getLedger: async () => ledger, dispatch: vi.fn() });
    expect(response.statusCode).toBe(405);
    expect(response.headers).toMatchObject({ Allow: 'POST' });
    expect(JSON.parse(response.body).error).toMatch(/POST/);
    expect(ledger.enqueue).not.toHaveBeenCalled();
  });

  it('answers 400 naming the problem for bad parameters, recording no run', async () => {
    const ledger = fakeLedger();
    const response = await handleStartJobRequest(job, post('{"schemas":["public"]}'), { getLedger: async () => ledger, dispatch: vi.fn() });
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body)).toEqual({ error: expect.stringContaining('"public"') });
    expect(ledger.enqueue).not.toHaveBeenCalled();
  });

  it('answers 409 naming the active run', async () => {
    const ledger = fakeLedger({
      enqueue: vi.fn(async () => {
        throw new ActiveRunError('export', otherRunId);
      }),
    });
    const dispatch = vi.fn();
    const response = await handleStartJobRequest(job, post(null), { getLedger: async () => ledger, dispatch });
    expect(response.statusCode).toBe(409);
    expect(JSON.parse(response.body)).toMatchObject({ activeRunId: otherRunId });
    expect(dispatch).not.toHaveBeenCalled();
  });

  it('never answers 204 when the hand-over fails: the run is failed and the caller gets 503', async () => {
    const ledger = fakeLedger();
    const dispatch = vi.fn(async () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:3002');
    });
    const response = await handleStartJobRequest(job, post(null), { getLedger: async () => ledger, dispatch });
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body)).toMatchObject({ runId, error: expect.any(String) });
    expect(ledger.fail).toHaveBeenCalledWith(runId, expect.stringContaining('ECONNREFUSED'));
  });

  it('still answers 503 when the failed hand-over cannot be recorded either', async () => {
    const ledger = fakeLedger({
      fail: vi.fn(async () => {
        throw new Error('Connection terminated unexpectedly');
      }),
    });
    const dispatch = vi.fn(async () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:3002');
    });
    const response = await handleStartJobRequest(job, post(null), { getLedger: async () => ledger, dispatch });
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body)).toMatchObject({ runId, error: expect.stringMatching(/could not be started/) });
    expect(ledger.fail).toHaveBeenCalledTimes(1);
  });

  it('answers a bare 500 without internals when the database is unreachable', async () => {
    const response = await handleStartJobRequest(job, post(null), {
      getLedger: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:5432 at select * from jobs.runs');
      },
      dispatch: vi.fn(),
    });
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toMatch(/ECONNREFUSED|select|at /);
  });
});
