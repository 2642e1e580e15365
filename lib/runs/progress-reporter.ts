import { logger } from '../logger';
import type { RunLedger } from './run-ledger';

export interface ProgressReporter {
  /** Notes the latest progress; it is written now or at the next allowed moment. Never throws. */
  report(progress: unknown): void;
  /** Waits for any write under way, then writes the latest progress not yet written. Never rejects. */
  flush(): Promise<void>;
}

/**
 * Throttles a run's progress writes: at most one write per `minIntervalMs`, never two at once,
 * and only the latest value counts (intermediate ones are dropped). A failed write is logged and
 * forgotten: progress is best effort and must not fail the job.
 */
export function createProgressReporter(
  ledger: Pick<RunLedger, 'reportProgress'>,
  runId: string,
  { minIntervalMs = 5000 }: { minIntervalMs?: number } = {},
): ProgressReporter {
  let pending: { value: unknown } | undefined;
  let inFlight: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastWriteAt = Number.NEGATIVE_INFINITY;

  function write(): Promise<void> {
    const { value } = pending!;
    pending = undefined;
    if (timer) clearTimeout(timer);
    timer = undefined;
    lastWriteAt = Date.now();
    const writing = (async () => {
      try {
        await ledger.reportProgress(runId, value);
      } catch (error) {
        logger.warn('Could not record the run progress; the run goes on', { runId, error: error as Error });
      }
    })();
    // Cleared in a then() so it runs after the assignment even if the write settles at once.
    inFlight = writing.then(() => {
      inFlight = undefined;
      schedule();
    });
    return inFlight;
  }

  function schedule(): void {
    if (!pending || inFlight || timer) return;
    const wait = lastWriteAt + minIntervalMs - Date.now();
    if (wait <= 0) {
      void write();
      return;
    }
    timer = setTimeout(() => {
      timer = undefined;
      schedule();
    }, wait);
    // A throttled write must not keep a finished process alive; flush() is how it gets written.
    timer.unref?.();
  }

  return {
    report(progress) {
      pending = { value: progress };
      schedule();
    },
    async flush() {
      while (inFlight || pending) {
        await (inFlight ?? write());
      }
    },
  };
}
