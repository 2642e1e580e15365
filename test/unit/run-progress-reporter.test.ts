import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { logger } from '../../lib/logger';
import { createProgressReporter } from '../../lib/runs/progress-reporter';
import { fakeLedgerHoldingProgress } from '../support/fakes';

const RUN_ID = '3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('createProgressReporter', () => {
  it('writes the first report at once, for the right run', () => {
    const ledger = fakeLedgerHoldingProgress();
    const reporter = createProgressReporter(ledger, RUN_ID, { minIntervalMs: 5000 });

    reporter.report({ tables: 1 });

    expect(ledger.reportProgress).toHaveBeenCalledTimes(1);
    expect(ledger.reportProgress).toHaveBeenCalledWith(RUN_ID, { tables: 1 });
  });

  it('writes at most once per interval, and only the latest value', async () => {
    const ledger = fakeLedgerHoldingProgress();
    const reporter = createProgressReporter(ledger, RUN_ID, { minIntervalMs: 5000 });

    reporter.report(1);
    ledger.writes[0]!.settle();
    await vi.advanceTimersByTimeAsync(1000);
    reporter.report(2);
    reporter.report(3);
    await vi.advanceTimersByTimeAsync(3999);
    expect(ledger.values()).toEqual([1]);

    await vi.advanceTimersByTimeAsync(1);
    expect(ledger.values()).toEqual([1, 3]);

    ledger.writes[1]!.settle();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ledger.values()).toEqual([1, 3]); // nothing new to write
  });

  it('never writes twice at once: a slow write holds back the next one until it ends', async () => {
    const ledger = fakeLedgerHoldingProgress();
    const reporter = createProgressReporter(ledger, RUN_ID, { minIntervalMs: 100 });

    reporter.report('a');
    reporter.report('b');
    await vi.advanceTimersByTimeAsync(10_000); // the first write hangs the whole time
    expect(ledger.values()).toEqual(['a']);

    ledger.writes[0]!.settle();
    await vi.advanceTimersByTimeAsync(0);
    expect(ledger.values()).toEqual(['a', 'b']);
    expect(ledger.maxOpen).toBe(1);
  });

  it('flush writes the pending value without waiting for the interval', async () => {
    const ledger = fakeLedgerHoldingProgress();
    const reporter = createProgressReporter(ledger, RUN_ID, { minIntervalMs: 5000 });
    reporter.report(1);
    ledger.writes[0]!.settle();
    await vi.advanceTimersByTimeAsync(0);
    reporter.report(2);

    const flushed = reporter.flush();
    await vi.advanceTimersByTimeAsync(0);
    expect(ledger.values()).toEqual([1, 2]);
    ledger.writes[1]!.settle();
    await flushed;

    await vi.advanceTimersByTimeAsync(10_000);
    expect(ledger.values()).toEqual([1, 2]); // the timer that was set for 2 does not write it again
  });

  it('flush waits for the write under way, then writes the last value', async () => {
    const ledger = fakeLedgerHoldingProgress();
    const reporter = createProgressReporter(ledger, RUN_ID, { minIntervalMs: 5000 });
    reporter.report(1);
    reporter.report(2);

    let done = false;
    const flushed = reporter.flush().then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(ledger.values()).toEqual([1]);
    expect(done).toBe(false);

    ledger.writes[0]!.settle();
    await vi.advanceTimersByTimeAsync(0);
    expect(ledger.values()).toEqual([1, 2]);
    expect(done).toBe(false);
    expect(ledger.maxOpen).toBe(1);

    ledger.writes[1]!.settle();
    await flushed;
    expect(done).toBe(true);
  });

  it('flush with nothing pending resolves at once and writes nothing', async () => {
    const ledger = fakeLedgerHoldingProgress();
    const reporter = createProgressReporter(ledger, RUN_ID);
    await reporter.flush();
    expect(ledger.reportProgress).not.toHaveBeenCalled();
  });

  it('logs a failed write and carries on: the next value is still written, flush does not reject', async () => {
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => {});
    const ledger = fakeLedgerHoldingProgress();
    const reporter = createProgressReporter(ledger, RUN_ID, { minIntervalMs: 1000 });

    reporter.report(1);
    ledger.writes[0]!.settle(new Error('connection terminated'));
    await vi.advanceTimersByTimeAsync(0);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('progress'), expect.objectContaining({ runId: RUN_ID, error: expect.any(Error) }));

    reporter.report(2);
    const flushed = reporter.flush();
    await vi.advanceTimersByTimeAsync(0);
    ledger.writes[1]!.settle(new Error('still down'));
    await expect(flushed).resolves.toBeUndefined();
    expect(ledger.values()).toEqual([1, 2]);
    expect(warn).toHaveBeenCalledTimes(2);
  });

  it('survives a ledger that throws instead of rejecting', async () => {
    vi.spyOn(logger, 'warn').mockImplementation(() => {});
    const reportProgress = vi.fn((_runId: string, _progress: unknown): Promise<void> => {
      throw new Error('boom');
    });
    const reporter = createProgressReporter({ reportProgress }, RUN_ID, { minIntervalMs: 1000 });

    expect(() => reporter.report(1)).not.toThrow();
    reporter.report(2);
    await expect(reporter.flush()).resolves.toBeUndefined();
    expect(reportProgress.mock.calls.map((c) => c[1] as unknown)).toEqual([1, 2]);
  });

  it('waits 5 seconds between writes by default', async () => {
    const ledger = fakeLedgerHoldingProgress();
    const reporter = createProgressReporter(ledger, RUN_ID);
    reporter.report(1);
    ledger.writes[0]!.settle();
    reporter.report(2);
    await vi.advanceTimersByTimeAsync(4999);
    expect(ledger.values()).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ledger.values()).toEqual([1, 2]);
  });
});
