import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import { holdRunSnapshot } from '../../lib/export/run-snapshot';
import type { HeldRunSnapshot, RunSnapshot } from '../../lib/export/run-snapshot';

/** A run's snapshot held as the export's coordinator holds it, for calling exportSchema directly. */
export async function holdTestRunSnapshot(sql: Sql, runId: string = randomUUID()): Promise<{ run: { runId: string; snapshot: RunSnapshot }; held: HeldRunSnapshot }> {
  const held = await holdRunSnapshot(sql, runId);
  return { run: { runId, snapshot: held.snapshot }, held };
}
