import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../support/database';
import { localApiKey, startOffline } from '../support/offline';
import type { Offline } from '../support/offline';
import { startSampleEnvironment } from '../support/sample-environment';
import type { SampleEnvironment } from '../support/sample-environment';

/**
 * 50 concurrent `POST /jobs/time-limited` through `sls offline`, each a cold start in a fresh
 * worker thread (serverless-offline's way): exactly one starts the run (204), the other 49 are
 * told a run is active (409), every answer comes within the API function's timeout (10 s: a
 * function that runs longer is answered 504 by offline, as by API Gateway, so "204 or 409 each"
 * is that check), and one run is recorded. The client's own wait also includes the emulator's
 * queueing of 50 worker threads on this machine's cores (7-10 s on a 2-core machine in November
 * 2026), which no deployed API has: it is bounded by API Gateway's integration limit, 29 s. Before the API bundles were slimmed, 49 got 504.
 * The worker of the one run is held on a lock until every answer is in, so no later POST can find
 * the run already over and start a second (the outcome must not depend on the machine's speed).
 */

const CONCURRENT = 50;
/** API Gateway's maximum integration time: no client waits longer for any answer. */
const GATEWAY_LIMIT_MS = 29_000;

let environment: SampleEnvironment | undefined;
let db: TestDatabase;
let offline: Offline;

beforeAll(async () => {
  environment = await startSampleEnvironment();
  db = environment.db;
  offline = await startOffline({ DATABASE_URL: db.url, EXPORT_BUCKET: environment.bucket, S3_ENDPOINT: environment.s3.endpoint });
}, 180_000);

afterAll(async () => {
  await offline?.stop();
  await environment?.stop();
});

describe('50 concurrent POSTs through sls offline', () => {
  it('one 204, 49 409s, each within the API timeout, one run', async () => {
    const holder = await db.sql.reserve();
    try {
      // The time-limited worker writes here: it waits, running, until the lock is released.
      await holder`BEGIN`;
      await holder`LOCK TABLE water.charge_version_workflows IN ACCESS EXCLUSIVE MODE`;

      const answers = await Promise.all(
        Array.from({ length: CONCURRENT }, async () => {
          const started = performance.now();
          const response = await fetch(`${offline.httpUrl}/jobs/time-limited`, { method: 'POST', headers: { 'x-api-key': localApiKey() } });
          const body = await response.text();
          return { status: response.status, body, ms: performance.now() - started, contentType: response.headers.get('content-type') };
        }),
      );
      const statuses = answers.map((a) => a.status);
      const slowest = Math.max(...answers.map((a) => a.ms));
      const detail = `statuses ${JSON.stringify(statuses)}, slowest ${Math.round(slowest)} ms\n${offline.output().slice(-4000)}`;
      expect(statuses.filter((s) => s === 204), detail).toHaveLength(1);
      expect(statuses.filter((s) => s === 409), detail).toHaveLength(CONCURRENT - 1);
      expect(slowest, detail).toBeLessThan(GATEWAY_LIMIT_MS);
      for (const refused of answers.filter((a) => a.status === 409)) {
        expect(JSON.parse(refused.body)).toMatchObject({ error: 'A time-limited run is already queued or running' });
      }
      const active = await db.sql`select status from jobs.runs where job = 'time-limited'`;
      expect(active).toHaveLength(1);
      expect(['queued', 'running']).toContain(active[0]!.status);
      console.log(`50 concurrent POSTs: slowest answer ${Math.round(slowest)} ms`);
    } finally {
      await holder`ROLLBACK`;
      holder.release();
    }
    // Released, the one run finishes; still one run.
    const deadline = Date.now() + 60_000;
    let runs = await db.sql`select status from jobs.runs where job = 'time-limited'`;
    while (runs.some((run) => run.status !== 'succeeded') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      runs = await db.sql`select status from jobs.runs where job = 'time-limited'`;
    }
    expect(runs, offline.output().slice(-4000)).toEqual([{ status: 'succeeded' }]);
  }, 240_000);
});
