/**
 * How a worker learns its run was cancelled (POST /jobs/runs/{id}/cancel marks it in the ledger):
 * it asks the ledger every CANCEL_POLL_MS while it works, so a step whose COPY waits on a lock,
 * and writes no progress meanwhile, notices too. The signal's reason is a RunCancelledError.
 */
export const CANCEL_POLL_MS = 1000;

export class RunCancelledError extends Error {
  override readonly name = 'RunCancelledError';
  constructor(readonly runId: string) {
    super(`Run ${runId} was cancelled`);
  }
}

export interface CancelWatch {
  signal: AbortSignal;
  stop(): void;
}

/** Polls `isCancelled` until it says yes (then aborts the signal) or stop(); a failed poll is tried again at the next tick. */
export function watchForCancel(runId: string, isCancelled: () => Promise<boolean>, intervalMs = CANCEL_POLL_MS): CancelWatch {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = async (): Promise<void> => {
    const cancelled = await isCancelled().catch(() => false);
    if (stopped) return;
    if (cancelled) {
      controller.abort(new RunCancelledError(runId));
      return;
    }
    schedule();
  };
  const schedule = (): void => {
    timer = setTimeout(() => void tick(), intervalMs);
    // Never what keeps a process alive (sls invoke local exits when its work is done).
    timer.unref();
  };
  schedule();
  return {
    signal: controller.signal,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
