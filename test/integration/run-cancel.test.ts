import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJobWorker } from '../../lib/jobs/run-job-worker';
import { createTimeLimitedJob } from '../../lib/jobs/time-limited-job';
import { createRunLedger } from '../../lib/runs/run-ledger';
import type { RunLedger } from '../../lib/runs/run-ledger';
import { TIME_LIMITED_LOCK_KEY } from '../../lib/time-limited/add-time-limited-workflows';
import { createWaterTables } from '../../scripts/sample-database/water-tables';
import { createMigratedTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { addManyQualifyingLicences } from './time-limited-fixtures';

/**
 * Cancelling a run whose worker is in the middle of it (POST /jobs/runs/{id}/cancel marks the
 * ledger; the worker polls it): the time-limited job's one statement is cancelled on the server
 * and its transaction rolled back whole.
 */

let db: TestDatabase;
let ledger: RunLedger;

beforeAll(async () => {
  db = await createMigratedTestDatabase('waj_run_cancel');
  await createWaterTables(db.sql);
  await addManyQualifyingLicences(db.sql, 200);
  ledger = createRunLedger(db.sql);
});
afterAll(async () => db?.drop());

describe('cancelling the time-limited job while it runs', () => {
  it('its statement (waiting for the job\'s lock here) is cancelled within seconds, nothing is added, the run stays cancelled and the worker says so', async () => {
    // Another run holds the job's lock: this one waits inside its transaction.
    const holder = postgres(db.url, { max: 1, onnotice: () => {} });
    await holder`SELECT pg_advisory_lock(${TIME_LIMITED_LOCK_KEY.toString()}::bigint)`;
    try {
      const run = await ledger.enqueue('time-limited', 'http');
      const job = createTimeLimitedJob({ days: 50, timeZone: 'Europe/London' });
      const working = runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: 60_000 }, { sql: db.sql, ledger });
      for (let i = 0; i < 100; i += 1) {
        const [waiting] = await db.sql`SELECT 1 FROM pg_stat_activity WHERE datname = ${db.name} AND wait_event_type = 'Lock' AND query ILIKE '%pg_advisory_xact_lock%'`;
        if (waiting) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const cancelled = await ledger.cancel(run.id, { kind: 'manual' });
      expect(cancelled).toMatchObject({ status: 'cancelled', cancelledBy: { kind: 'manual' }, error: 'Cancelled by a manual invocation' });
      const asked = Date.now();
      await expect(working).resolves.toEqual({ runId: run.id, status: 'cancelled' });
      expect(Date.now() - asked).toBeLessThan(5_000);
      expect(await db.sql`SELECT 1 FROM water.charge_version_workflows`).toHaveLength(0);
      expect(await ledger.get(run.id)).toMatchObject({ status: 'cancelled', result: null });
      const [left] = await db.sql`SELECT 1 FROM pg_stat_activity WHERE datname = ${db.name} AND query ILIKE '%charge_version_workflows%' AND state <> 'idle' AND pid <> pg_backend_pid()`;
      expect(left).toBeUndefined();
    } finally {
      await holder.end();
    }
    // The next run adds the rows.
    const next = await ledger.enqueue('time-limited', 'http');
    const outcome = await runJobWorker(createTimeLimitedJob({ days: 50, timeZone: 'Europe/London' }), { kind: 'run', runId: next.id }, { leaseMs: 60_000 }, { sql: db.sql, ledger });
    expect(outcome).toMatchObject({ status: 'succeeded', result: { count: 200 } });
  });
});
