import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Sql } from 'postgres';
import { holdRunSnapshot } from '../../lib/export/run-snapshot';
import { createExportStepWork } from '../../lib/jobs/export-steps';
import type { RunStep, StepLedger, StepProgress, StepResult } from '../../lib/runs/step-ledger';

/** One schema's step: its result when it succeeded, its error when it failed. */
export interface StepOutcome extends Partial<StepResult> {
  schema: string;
  status: 'succeeded' | 'failed';
  error?: string;
}

export interface ExportedThroughSteps {
  runId: string;
  asOf: string;
  schemas: StepOutcome[];
  timeTakenMs: number;
}

/**
 * An export run's schemas as the job exports them, for tests and benchmarks: the run's snapshot
 * held as the coordinator holds it (holdRunSnapshot, on a connection of `sql`'s pool), then each
 * schema through the step work exportSchemaWorker runs (createExportStepWork), one after another,
 * each outcome kept. What the ledger adds (claims, leases, the run's ending) is left out: the
 * fan-out tests cover it. Throws when the snapshot cannot be held, as the coordinator fails.
 */
export async function exportThroughSteps(
  settings: { bucket: string; prefix: string; schemas: string[]; tableParallelism?: number; runId?: string },
  deps: { sql: Sql; s3: S3Client; tmpRoot?: string; removeLeftovers?: boolean },
  onProgress?: (schema: string, progress: StepProgress) => void,
): Promise<ExportedThroughSteps> {
  const started = performance.now();
  const runId = settings.runId ?? randomUUID();
  const held = await holdRunSnapshot(deps.sql, runId);
  const work = createExportStepWork(settings, deps.s3, { removeLeftovers: deps.removeLeftovers ?? false, tmpRoot: deps.tmpRoot ?? tmpdir() });
  // The calls of the ledger that a step's work makes; the rest is the worker's (runStepWorker).
  // No one cancels these runs: the run is running until the snapshot is let go.
  const ledger: Pick<StepLedger, 'runSnapshot' | 'markSnapshotImported' | 'runStatus'> = {
    runSnapshot: async () => held.snapshot,
    markSnapshotImported: async () => {},
    runStatus: async () => 'running',
  };
  const outcomes: StepOutcome[] = [];
  try {
    for (const [position, schema] of settings.schemas.entries()) {
      const step = { id: randomUUID(), runId, position, name: schema } as RunStep; // the fields the work reads
      try {
        const result = await work(step, {
          sql: deps.sql,
          steps: ledger as StepLedger, // the work calls no other method (see above)
          reportProgress: (progress) => onProgress?.(schema, progress),
        });
        outcomes.push({ schema, status: 'succeeded', ...result });
      } catch (error) {
        outcomes.push({ schema, status: 'failed', error: error instanceof Error ? error.message : String(error) });
      }
    }
  } finally {
    await held.release();
  }
  return { runId, asOf: held.snapshot.asOf, schemas: outcomes, timeTakenMs: Math.round(performance.now() - started) };
}

/** Throws naming each schema that failed, with its cause. */
export function assertEveryStepSucceeded(result: ExportedThroughSteps): void {
  const failed = result.schemas.filter((outcome) => outcome.status === 'failed');
  if (failed.length > 0) throw new Error(`${failed.length} of ${result.schemas.length} steps failed: ${failed.map((o) => `${o.schema} (${o.error})`).join('; ')}`);
}
