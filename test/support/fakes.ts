/** Fakes shared by the unit tests (integration and end-to-end tests use the real things). */
import { vi } from 'vitest';
import type { RunLedger } from '../../lib/runs/run-ledger';

function notUsed(method: string) {
  return () => {
    throw new Error(`RunLedger.${method} is not used in this test`);
  };
}

/** A RunLedger whose every method throws "not used" unless the test gives it. */
export function fakeRunLedger(overrides: Partial<RunLedger> = {}): RunLedger {
  return {
    enqueue: notUsed('enqueue'),
    findByRequestId: notUsed('findByRequestId'),
    recordSkipped: notUsed('recordSkipped'),
    claim: notUsed('claim'),
    reportProgress: notUsed('reportProgress'),
    succeed: notUsed('succeed'),
    fail: notUsed('fail'),
    get: notUsed('get'),
    getWithSteps: notUsed('getWithSteps'),
    list: notUsed('list'),
    cancel: notUsed('cancel'),
    schedulePause: notUsed('schedulePause'),
    setSchedulePause: notUsed('setSchedulePause'),
    ...overrides,
  };
}

/**
 * A ledger whose progress writes stay open until the test settles them, so overlapping writes
 * can be seen (the other methods throw, as in fakeRunLedger).
 */
export function fakeLedgerHoldingProgress() {
  const writes: { runId: string; progress: unknown; settle(error?: Error): void }[] = [];
  let open = 0;
  let maxOpen = 0;
  return {
    ...fakeRunLedger(),
    writes,
    get maxOpen() {
      return maxOpen;
    },
    values: () => writes.map((w) => w.progress),
    reportProgress: vi.fn(
      (runId: string, progress: unknown) =>
        new Promise<void>((resolve, reject) => {
          open += 1;
          maxOpen = Math.max(maxOpen, open);
          writes.push({
            runId,
            progress,
            settle(error) {
              open -= 1;
              if (error) reject(error);
              else resolve();
            },
          });
        }),
    ),
    /** Settles every open write. */
    settleAll() {
      for (const w of writes) w.settle();
    },
  };
}
