import type { Sql } from 'postgres';
import type { ExportSettings } from '../config';
import { holdRunSnapshot, RunSnapshotGoneError } from '../export/run-snapshot';
import type { HeldRunSnapshot } from '../export/run-snapshot';
import { logger } from '../logger';
import { createStepLedger } from '../runs/step-ledger';
import type { StepLedger } from '../runs/step-ledger';
import { STEPS_CLOSE_THE_RUN } from './job';
import { recordRunClosed } from './run-step-worker';
import { failStepsNotHandedOver } from './start-steps';
import type { StartSteps } from './start-steps';
import type { Job } from './job';
import { createExportRequest } from './export-request';
import type { ExportParams } from './export-request';

export interface SnapshotHoldOptions {
  /**
   * `lease`: the steps run elsewhere (Lambda), and the coordinator holds the run's snapshot for
   * them at most until its own attempt's deadline less SNAPSHOT_RELEASE_MARGIN_MS. `unbounded`: the
   * steps run in this process (inline), which holds it until every step has imported it or ended.
   */
  bound: 'lease' | 'unbounded';
  /** Holds it at most this long besides (tests of the ledger, whose steps import nothing). */
  atMostMs?: number;
  /** How often the ledger is asked which steps have imported (default 250 ms). */
  pollMs?: number;
  /**
   * The database the steps read (a snapshot can be imported only in the database that exported
   * it). Default: the run ledger's, which is where the jobs schema lives (DATABASE_URL).
   */
  source?: Sql;
}

/** Time left, at the coordinator's deadline, to let go of the snapshot and record the outcome. */
export const SNAPSHOT_RELEASE_MARGIN_MS = 15_000;

/**
 * The export as a coordinator. It opens the run's snapshot (lib/export/run-snapshot.ts) and
 * records it, records one step per schema, hands each to the schema worker, and holds the
 * snapshot until every step has imported it or ended; then it leaves the run to the steps
 * (STEPS_CLOSE_THE_RUN). A step it could not hand over fails at once, naming the cause.
 *
 * Taken over by Lambda's retry of the same request, it does not open another snapshot: the run's
 * moment ended with the attempt that held it, so the steps still queued fail naming that, and the
 * steps that had imported it carry on.
 */
export function createExportJob(settings: Pick<ExportSettings, 'schemas'>, startSteps: StartSteps, hold: SnapshotHoldOptions = { bound: 'lease' }): Job<ExportParams> {
  return {
    ...createExportRequest(settings),
    async run(params, { sql, runId, deadline }) {
      const ledger = createStepLedger(sql);
      if (await ledger.runSnapshot(runId)) return failStepsOfLostSnapshot(ledger, runId);

      const held = await holdRunSnapshot(hold.source ?? sql, runId);
      // Settled at once with a handler: a failure recording a step that could not be handed over
      // (the ledger's connection dropped) must not be an unhandled rejection while the snapshot is held.
      let handedOver: Promise<{ error: unknown } | undefined> = Promise.resolve(undefined);
      try {
        await ledger.recordRunSnapshot(runId, held.snapshot);
        const steps = await ledger.addSteps(runId, params.schemas ?? settings.schemas);
        const queued = steps.filter((step) => step.status === 'queued');
        logger.info('Export fanned out', { runId, asOf: held.snapshot.asOf, steps: steps.map((step) => step.name), handedOver: queued.map((step) => step.name) });
        // Inline, this resolves when the steps have ended; meanwhile the snapshot is let go as soon as they have all imported it.
        handedOver = startSteps(queued.map((step) => ({ runId, step: step.name })))
          .then((outcomes) => failStepsNotHandedOver(ledger, runId, queued, outcomes))
          .then(
            () => undefined,
            (error: unknown) => ({ error }),
          );
        const limit = Math.min(
          hold.bound === 'lease' ? deadline - SNAPSHOT_RELEASE_MARGIN_MS : Number.POSITIVE_INFINITY,
          Date.now() + (hold.atMostMs ?? Number.POSITIVE_INFINITY),
        );
        await holdUntilImported(ledger, runId, held, limit, hold.pollMs ?? 250);
      } finally {
        await held.release();
      }
      const handOverFailure = await handedOver;
      if (handOverFailure) throw handOverFailure.error;
      // Nothing left to run (every step had ended, or failed to be handed over): the run ends here.
      const closed = await ledger.closeIfDone(runId);
      if (closed) recordRunClosed(closed);
      return STEPS_CLOSE_THE_RUN;
    },
  };
}

/**
 * Waits until no step is queued or running without having imported the run's snapshot; stops
 * early when the snapshot is lost (the steps still to import it will fail naming that) or at
 * `limit` (epoch ms), after which a step that starts finds the snapshot gone.
 */
async function holdUntilImported(ledger: StepLedger, runId: string, held: HeldRunSnapshot, limit: number, pollMs: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    const waiting = await ledger.stepsAwaitingSnapshot(runId);
    if (waiting.length === 0) {
      logger.info("Run's snapshot imported by every step; let go", { runId, heldMs: Date.now() - started });
      return;
    }
    if (held.isLost()) {
      logger.error("The run's snapshot was lost before every step imported it", { runId, waiting });
      return;
    }
    if (Date.now() + pollMs > limit) {
      logger.error("The coordinator's time is up: the run's snapshot is let go before every step imported it", { runId, waiting, heldMs: Date.now() - started });
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** A retry of the coordinator: the snapshot ended with the attempt that held it. */
async function failStepsOfLostSnapshot(ledger: StepLedger, runId: string): Promise<typeof STEPS_CLOSE_THE_RUN> {
  const error = new RunSnapshotGoneError(runId, "the coordinator's attempt that held it ended before this step imported it").message;
  for (const step of await ledger.listSteps(runId)) {
    if (step.status === 'queued') await ledger.finish(step.id, { status: 'failed', error, final: true });
  }
  logger.warn("Coordinator retried: the run's snapshot ended with the earlier attempt; steps still queued failed", { runId });
  const closed = await ledger.closeIfDone(runId);
  if (closed) recordRunClosed(closed);
  return STEPS_CLOSE_THE_RUN;
}
