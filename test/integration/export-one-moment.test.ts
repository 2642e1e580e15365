import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Sql } from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SchemaManifest } from '../../lib/export/export-schema';
import { snapshotHolderName } from '../../lib/export/run-snapshot';
import { createExportJob } from '../../lib/jobs/export-job';
import { createExportStepWork } from '../../lib/jobs/export-steps';
import { createStartSteps } from '../../lib/jobs/start-steps';
import { runStepInline } from '../../lib/jobs/job-functions';
import { runJobWorker } from '../../lib/jobs/run-job-worker';
import { runStepWorker } from '../../lib/jobs/run-step-worker';
import { createRunLedger } from '../../lib/runs/run-ledger';
import type { RunLedger } from '../../lib/runs/run-ledger';
import { createStepLedger } from '../../lib/runs/step-ledger';
import type { StepLedger } from '../../lib/runs/step-ledger';
import { createMigratedTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';
import { downloadObject, unpackTarball } from '../fixtures/export/tarball';

/**
 * One moment for the whole run (issue "One moment for the whole database"): every step of an
 * export run reads the coordinator's snapshot, however far apart the steps start, and a step that
 * can no longer import it fails saying so rather than reading another moment.
 */

const LEASE_MS = 60_000;
const FIRST = 'm_first';
const MIDDLE = 'm_middle';
const LAST = 'm_last';
const SCHEMAS = [FIRST, MIDDLE, LAST];
const LATE = 'committed while the first schema was being read';
const SEED = `
  CREATE SCHEMA ${FIRST};
  CREATE TABLE ${FIRST}.a_held (id int PRIMARY KEY);
  INSERT INTO ${FIRST}.a_held SELECT generate_series(1, 10);
  CREATE TABLE ${FIRST}.b_licences (id int PRIMARY KEY, note text);
  INSERT INTO ${FIRST}.b_licences VALUES (1, 'there from the start');
  CREATE SCHEMA ${MIDDLE};
  CREATE TABLE ${MIDDLE}.t (id int);
  INSERT INTO ${MIDDLE}.t VALUES (1);
  CREATE SCHEMA ${LAST};
  CREATE TABLE ${LAST}.documents (id int PRIMARY KEY, licence_id int, note text);
  INSERT INTO ${LAST}.documents VALUES (1, 1, 'there from the start');
`;

let db: TestDatabase;
let s3: TestS3;
let bucket: string;
let ledger: RunLedger;
let steps: StepLedger;
let tmpRoot: string;
const originalTmpdir = process.env.TMPDIR;

beforeAll(async () => {
  db = await createMigratedTestDatabase('waj_one_moment');
  await db.sql.unsafe(SEED);
  s3 = await startTestS3();
  ledger = createRunLedger(db.sql);
  steps = createStepLedger(db.sql);
}, 60_000);

afterAll(async () => {
  await s3?.close();
  await db?.drop();
});

beforeEach(async () => {
  await db.sql`TRUNCATE jobs.runs CASCADE`;
  await db.sql.unsafe(`DELETE FROM ${FIRST}.b_licences WHERE id <> 1; DELETE FROM ${LAST}.documents WHERE id <> 1`);
  bucket = await s3.createBucket();
  // The steps' temporary files go here, so the test can see that none is left behind.
  tmpRoot = await mkdtemp(join(tmpdir(), 'waj-one-moment-'));
  process.env.TMPDIR = tmpRoot;
});

afterEach(async () => {
  if (originalTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = originalTmpdir;
  await rm(tmpRoot, { recursive: true, force: true });
});

/** The coordinator, its steps in this process one at a time (`EXPORT_CONCURRENCY=1`, inline). */
function inlineExportOneAtATime() {
  const work = createExportStepWork({ bucket, prefix: 'export/' }, s3.client);
  const startSteps = createStartSteps({ mode: 'inline' }, 1, (event) => runStepInline(work, event, { url: db.url }));
  return createExportJob({ schemas: SCHEMAS }, startSteps, { bound: 'unbounded' });
}

/** A session holding ACCESS EXCLUSIVE on the first schema's first table: its COPY waits until released. */
async function holdFirstTable(): Promise<{ release: () => Promise<void> }> {
  const locker = await db.sql.reserve();
  await locker`BEGIN`;
  await locker.unsafe(`LOCK TABLE ${FIRST}.a_held IN ACCESS EXCLUSIVE MODE`);
  return {
    release: async () => {
      await locker`COMMIT`;
      locker.release();
    },
  };
}

async function waitForCopyWaitingOnLock(sql: Sql): Promise<void> {
  for (let attempt = 0; attempt < 1000; attempt += 1) {
    const [row] = await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE 'COPY%'`;
    if (row!.n > 0) return;
    await sleep(20);
  }
  throw new Error("The first schema's COPY never waited on the lock");
}

/** One transaction that commits a row into the first schema and the last, as the service's joins see them. */
async function commitRowIntoFirstAndLast(): Promise<void> {
  await db.sql.begin(async (tx) => {
    await tx.unsafe(`INSERT INTO ${FIRST}.b_licences VALUES (2, '${LATE}')`);
    await tx.unsafe(`INSERT INTO ${LAST}.documents VALUES (2, 2, '${LATE}')`);
  });
}

interface Tarball {
  manifest: SchemaManifest;
  csv: (table: string) => Promise<string>;
}

async function readTarball(schema: string): Promise<Tarball> {
  const { folder, entries } = await unpackTarball(await downloadObject(s3.client, bucket, `export/${schema}.tgz`));
  const manifestEntry = entries.find((entry) => entry.endsWith('/manifest.json'));
  if (!manifestEntry) throw new Error(`${schema}.tgz has no manifest: ${entries.join(', ')}`);
  const manifest = JSON.parse(await readFile(join(folder, manifestEntry), 'utf8')) as SchemaManifest;
  return {
    manifest,
    csv: async (table) => {
      const entry = entries.find((e) => e.endsWith(`/${table}.csv`));
      if (!entry) throw new Error(`${schema}.tgz has no ${table}.csv: ${entries.join(', ')}`);
      return readFile(join(folder, entry), 'utf8');
    },
  };
}

async function keys(): Promise<string[]> {
  const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (listed.Contents ?? []).map((o) => o.Key!).sort();
}

describe('an export run is one moment of the whole database', () => {
  it('EXPORT_CONCURRENCY=1 in-process: a row committed into the first and last schema while the first is read is in neither tarball; the manifests agree on runId and asOf', async () => {
    const held = await holdFirstTable();
    const run = await ledger.enqueue('export', 'http', { schemas: SCHEMAS });
    const running = runJobWorker(inlineExportOneAtATime(), { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    let outcome: Awaited<typeof running>;
    try {
      await waitForCopyWaitingOnLock(db.sql);
      await commitRowIntoFirstAndLast();
    } finally {
      await held.release();
      outcome = await running;
    }

    expect(outcome).toMatchObject({ status: 'succeeded' });
    // The row is in the database: had a step taken a snapshot of its own, it would have read it.
    expect(await db.sql.unsafe(`SELECT count(*)::int AS n FROM ${LAST}.documents WHERE note = '${LATE}'`)).toEqual([{ n: 1 }]);

    const [first, middle, last] = await Promise.all(SCHEMAS.map(readTarball));
    expect(await first!.csv('b_licences')).toContain('there from the start');
    expect(await first!.csv('b_licences')).not.toContain(LATE);
    expect(await last!.csv('documents')).toContain('there from the start');
    expect(await last!.csv('documents')).not.toContain(LATE);

    const finished = await ledger.get(run.id);
    expect(finished?.asOf).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    for (const tarball of [first!, middle!, last!]) {
      expect({ runId: tarball.manifest.runId, asOf: tarball.manifest.asOf }).toEqual({ runId: run.id, asOf: finished!.asOf });
    }
    expect(finished?.result).toMatchObject({ asOf: finished!.asOf });
  });

  it("the coordinator's backend terminated before the later steps imported: they fail naming the lost snapshot, the run fails with it, nothing else is uploaded or left behind; the step that had imported finishes", async () => {
    const held = await holdFirstTable();
    const run = await ledger.enqueue('export', 'http', { schemas: SCHEMAS });
    const running = runJobWorker(inlineExportOneAtATime(), { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    try {
      await waitForCopyWaitingOnLock(db.sql);
      const terminated = await db.sql<{ ok: boolean }[]>`
        SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE application_name = ${snapshotHolderName(run.id)}`;
      expect(terminated).toEqual([{ ok: true }]);
    } finally {
      await held.release();
      // The coordinator may end either way; what counts is what the ledger and the bucket say.
      await Promise.allSettled([running]);
    }

    const finished = await ledger.getWithSteps(run.id);
    expect(finished?.status).toBe('failed');
    expect(finished?.error).toMatch(/snapshot is gone.*Start a new export run/s);
    const byName = Object.fromEntries((finished?.steps ?? []).map((step) => [step.name, step]));
    expect(byName[FIRST]).toMatchObject({ status: 'succeeded' });
    for (const later of [MIDDLE, LAST]) {
      expect(byName[later]).toMatchObject({ status: 'failed' });
      expect(byName[later]?.error).toMatch(/The export run's snapshot is gone.*Start a new export run/s);
    }
    expect(await keys()).toEqual([`export/${FIRST}.tgz`]);
    expect(await readdir(tmpRoot)).toEqual([]);
    const [holder] = await db.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE ${`%${run.id}%`}`;
    expect(holder!.n).toBe(0);
  });

  it("a Lambda retry of a step (same event, same request id) while the coordinator holds the snapshot reads the run's moment", async () => {
    const job = createExportJob(
      { schemas: [FIRST, LAST] },
      async (events) => events.map(() => ({ status: 'fulfilled', value: undefined }) as const),
      { bound: 'lease', atMostMs: LEASE_MS, pollMs: 50 },
    );
    const run = await ledger.enqueue('export', 'http', { schemas: [FIRST, LAST] });
    const coordinating = runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: LEASE_MS }, { sql: db.sql, ledger });
    while ((await steps.listSteps(run.id)).length < 2) await sleep(20);
    // Committed after the run's snapshot was taken: no step of the run may see it.
    await commitRowIntoFirstAndLast();

    const work = createExportStepWork({ bucket, prefix: 'export/' }, s3.client);
    const deliver = (step: string, requestId: string) =>
      runStepWorker({ runId: run.id, step }, work, { leaseMs: LEASE_MS, maxAttempts: 2, requestId }, { sql: db.sql, steps });
    await expect(deliver(LAST, 'req-last')).resolves.toMatchObject({ status: 'succeeded' });
    // The first step's attempt 1 claimed it, then its process died; Lambda delivers the same event again.
    await expect(steps.claim(run.id, FIRST, { leaseMs: LEASE_MS, requestId: 'req-first' })).resolves.toMatchObject({ claimed: true });
    await expect(deliver(FIRST, 'req-first')).resolves.toMatchObject({ status: 'succeeded' });
    await coordinating;

    const finished = await ledger.get(run.id);
    expect(finished?.status).toBe('succeeded');
    const [first, last] = await Promise.all([readTarball(FIRST), readTarball(LAST)]);
    expect(first.manifest.asOf).toBe(finished?.asOf);
    expect(last.manifest.asOf).toBe(finished?.asOf);
    expect(await first.csv('b_licences')).not.toContain(LATE);
    expect(await last.csv('documents')).not.toContain(LATE);
  });
});
