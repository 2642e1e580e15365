import { readFile } from 'node:fs/promises';
import { PutObjectCommand, PutObjectTaggingCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreSettings } from '../../lib/config';
import { createS3Client } from '../../lib/clients/s3';
import { runStepInline } from '../../lib/jobs/job-functions';
import { createRestoreJob } from '../../lib/jobs/restore-job';
import { createRestoreStepWork } from '../../lib/jobs/restore-steps';
import { runJobWorker } from '../../lib/jobs/run-job-worker';
import { createStartSteps } from '../../lib/jobs/start-steps';
import { createRestoreTarget } from '../../lib/restore/restore-target';
import { createRunLedger } from '../../lib/runs/run-ledger';
import type { RunLedger, RunWithSteps } from '../../lib/runs/run-ledger';
import { downloadObject } from '../fixtures/export/tarball';
import { createMigratedTestDatabase, createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { describeSchema } from '../support/describe-schema';
import { exportThroughJob } from '../support/export-through-job';
import { leftovers, nextValues, terminateCopyIn, rewriteTarball, rowsOf, stateOf } from '../support/restore-checks';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';

/**
 * The restore job (issue "The fallback, end to end"), its coordinator and steps in this process
 * (inline), against a real PostgreSQL and s3rver: tarballs made by the real export job into the
 * bucket, restored into a database of their own; each refusal leaves the target as it was.
 */

const SCHEMAS = ['Water Rights', 'crm'];
const FIXTURE = new URL('../fixtures/definition/rich-schemas.sql', import.meta.url);

let source: TestDatabase;
let target: TestDatabase;
let s3: TestS3;
let bucket: string;
let ledger: RunLedger;
const databases: TestDatabase[] = [];

/** A restore run as restoreApi records it and restoreWorker carries it out, steps inline, two at once. */
async function restoreRun(params: Record<string, unknown> = {}, into: TestDatabase = target, schemas: string[] = SCHEMAS): Promise<RunWithSteps> {
  const settings: RestoreSettings = { bucket, prefix: 'export/', schemas, target: { url: into.url }, concurrency: 2, tableParallelism: 2 };
  const restoreTarget = createRestoreTarget(settings.target);
  const work = createRestoreStepWork(settings, s3.client, restoreTarget);
  const startSteps = createStartSteps({ mode: 'inline' }, 2, (event) => runStepInline(work, event, { url: source.url }));
  const job = createRestoreJob(settings, startSteps, { s3: s3.client, target: restoreTarget, sourceDatabaseUrl: async () => source.url });
  const run = await ledger.enqueue('restore', 'http', job.parseParams(params));
  await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: 60_000 }, { sql: source.sql, ledger }).catch(() => {});
  return (await ledger.getWithSteps(run.id))!;
}

async function putTarball(schema: string, body: Buffer): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: `export/${schema}.tgz`, Body: body }));
}

beforeAll(async () => {
  source = await createMigratedTestDatabase('waj_restore_job_source');
  await source.sql.unsafe(await readFile(FIXTURE, 'utf8'));
  ledger = createRunLedger(source.sql);
  s3 = await startTestS3();
  bucket = await s3.createBucket();
  target = await createTestDatabase('waj_restore_job_target');
  databases.push(target);
}, 120_000);

afterAll(async () => {
  for (const db of databases) await db.drop().catch(() => {});
  await s3?.close();
  await source?.drop();
});

describe('the restore job', () => {
  let exportRunId: string;

  it('restores every schema of the latest export: one step each, the last puts them in place; catalog, rows and next values are the source’s', async () => {
    ({ runId: exportRunId } = await exportThroughJob(source, s3.client, bucket, SCHEMAS));
    const run = await restoreRun();
    expect(run.status, run.error ?? '').toBe('succeeded');
    expect(run.steps.map((s) => [s.name, s.status])).toEqual([
      ['Water Rights', 'succeeded'],
      ['crm', 'succeeded'],
    ]);
    // Exactly one step put the run's schemas in place, and every step loaded its tarball of the one export run.
    expect(run.steps.filter((s) => s.result?.replaced).length).toBe(1);
    expect(run.steps.map((s) => s.result?.exportRunId)).toEqual([exportRunId, exportRunId]);
    expect(run.steps.map((s) => [s.result?.tables, s.result?.rows])).toEqual([
      [11, 16],
      [2, 7],
    ]);
    const exported = await ledger.get(exportRunId);
    expect(run.asOf).toBe(exported!.asOf);

    for (const schema of SCHEMAS) expect(await describeSchema(target.sql, schema, SCHEMAS)).toEqual(await describeSchema(source.sql, schema, SCHEMAS));
    expect(await rowsOf(target.sql, SCHEMAS)).toEqual(await rowsOf(source.sql, SCHEMAS));
    const next = await nextValues(target.url, SCHEMAS);
    expect(Object.keys(next)).toHaveLength(7);
    expect(next).toEqual(await nextValues(source.url, SCHEMAS));
    // A foreign key between the two schemas points at the restored table, not a dropped one.
    const [crossKeys] = await target.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_constraint k JOIN pg_namespace a ON a.oid = k.connamespace JOIN pg_class r ON r.oid = k.confrelid JOIN pg_namespace b ON b.oid = r.relnamespace
      WHERE k.contype = 'f' AND a.nspname <> b.nspname AND a.nspname = ANY(${SCHEMAS}::text[]) AND b.nspname = ANY(${SCHEMAS}::text[])`;
    expect(crossKeys!.n).toBeGreaterThan(0);
    const [comment] = await target.sql<{ c: string }[]>`SELECT obj_description(oid, 'pg_namespace') AS c FROM pg_namespace WHERE nspname = 'crm'`;
    expect(comment!.c).toContain(`restore run ${run.id}, export run ${exportRunId}`);
    expect(await leftovers(target.sql)).toEqual([]);
  });

  describe('refused, the target still holds the previous restore, every schema of it', () => {
    let before: unknown;

    beforeAll(async () => {
      before = await stateOf(target.sql, SCHEMAS);
    });

    async function refused(params: Record<string, unknown>, pattern: RegExp): Promise<RunWithSteps> {
      const run = await restoreRun(params);
      expect(run.status).toBe('failed');
      expect(run.error).toMatch(pattern);
      expect(await stateOf(target.sql, SCHEMAS)).toEqual(before);
      expect(await leftovers(target.sql)).toEqual([]);
      return run;
    }

    it('one value changed in one CSV after the export (manifest kept): its step fails naming the table, the run fails', async () => {
      const original = await downloadObject(s3.client, bucket, 'export/crm.tgz');
      const changed = await rewriteTarball(original, (entries) =>
        entries.map((e) => (e.name === 'crm/customers.csv' ? { ...e, content: Buffer.from(e.content.toString().replace('Anglian Farms', 'Anglian Farmz')) } : e)),
      );
      // The object's metadata kept too: the change is the bytes alone.
      await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'export/crm.tgz', Body: changed, Metadata: { 'run-id': exportRunId, schema: 'crm' } }));
      try {
        const run = await refused({}, /crm failed: .*table "customers".*sha256 expected/);
        expect(run.steps.find((s) => s.name === 'crm')).toMatchObject({ status: 'failed', error: expect.stringMatching(/table "customers"/) });
      } finally {
        await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'export/crm.tgz', Body: original, Metadata: { 'run-id': exportRunId, schema: 'crm' } }));
      }
    });

    it('a tarball the verifier tagged verified=false: refused naming it, before anything is built', async () => {
      await s3.client.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: 'export/crm.tgz', Tagging: { TagSet: [{ Key: 'verified', Value: 'false' }] } }));
      try {
        const run = await refused({}, /export\/crm\.tgz is tagged verified=false/);
        expect(run.steps).toEqual([]);
      } finally {
        await s3.client.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: 'export/crm.tgz', Tagging: { TagSet: [{ Key: 'verified', Value: 'true' }] } }));
      }
    });

    it('tarballs of different export runs: refused unless the request names the schemas', async () => {
      await source.sql`INSERT INTO crm.customers (name) VALUES ('Only In The Second Export')`;
      const { runId: second } = await exportThroughJob(source, s3.client, bucket, ['crm'], undefined, SCHEMAS);
      await refused({}, new RegExp(`different export runs \\(Water Rights from ${exportRunId}; crm from ${second}\\)`));
      await refused({ exportRunId }, new RegExp(`not all of export run ${exportRunId}`));

      const named = await restoreRun({ schemas: SCHEMAS });
      expect(named.status, named.error ?? '').toBe('succeeded');
      expect(await rowsOf(target.sql, ['crm'])).toEqual(await rowsOf(source.sql, ['crm']));
      expect(named.asOf).toBeNull();
      before = await stateOf(target.sql, SCHEMAS);
    });

    it('a tarball whose definition names a replaced schema outright (exported with another list of schemas): refused before the swap, which would bind it to the old one', async () => {
      // Exported with crm alone configured, its column of type "Water Rights".licence_status is
      // printed qualified: a restore of both would point it at the old "Water Rights", then drop it.
      await exportThroughJob(source, s3.client, bucket, ['crm'], undefined, ['crm']);
      await refused({ schemas: SCHEMAS }, /would refer to the ones they replace: column preferred_status of table (\S+\.)?customers refers to type "Water Rights"\.licence_status/);
    });

    it('a schema with no tarball: refused naming the key', async () => {
      await putTarball('Water Rights', await downloadObject(s3.client, bucket, 'export/Water Rights.tgz'));
      const run = await refused({ schemas: ['crm'], exportRunId: '00000000-0000-4000-8000-000000000000' }, /not all of export run/);
      expect(run.steps).toEqual([]);
    });
  });

  it('the target is the database the export reads: refused, nothing created there', async () => {
    const run = await restoreRun({ schemas: ['crm'] }, source);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/the database the export reads/);
    expect(await leftovers(source.sql)).toEqual([]);
  });

  describe('faults', () => {
    let bulkTarget: TestDatabase;

    beforeAll(async () => {
      await source.sql.unsafe(`CREATE SCHEMA bulk; CREATE TABLE bulk.rows AS SELECT g AS id, md5(g::text) AS a, repeat('x', 200) AS b FROM generate_series(1, 300000) g; ALTER TABLE bulk.rows ADD PRIMARY KEY (id)`);
      await exportThroughJob(source, s3.client, bucket, ['bulk']);
      bulkTarget = await createTestDatabase('waj_restore_job_fault');
      databases.push(bulkTarget);
      // Yesterday's restore, to stay as it is.
      await bulkTarget.sql.unsafe(`CREATE SCHEMA bulk; CREATE TABLE bulk.rows (id int); INSERT INTO bulk.rows VALUES (42)`);
    }, 120_000);

    it("the target's backend terminated during a step's COPY: the run fails with the cause, nothing replaced, nothing left behind", async () => {
      const restoring = restoreRun({}, bulkTarget, ['bulk']);
      const terminated = await terminateCopyIn(bulkTarget.sql);
      expect(terminated, 'a COPY was seen and ended').toBe(true);
      const run = await restoring;
      expect(run.status).toBe('failed');
      expect(run.steps).toMatchObject([{ name: 'bulk', status: 'failed' }]);
      expect(run.error).toMatch(/bulk failed: Loading "bulk"\."rows": .*connection/i);
      expect(await bulkTarget.sql`SELECT id FROM bulk.rows`).toEqual([{ id: 42 }]);
      expect(await leftovers(bulkTarget.sql)).toEqual([]);
    });

    it('cancelled while its step loads: the load stops within seconds, the run and step are cancelled, the target is as it was, no staging left', async () => {
      const restoring = restoreRun({}, bulkTarget, ['bulk']);
      let runId: string | undefined;
      for (let attempt = 0; attempt < 3000 && !runId; attempt += 1) {
        const [copying] = await bulkTarget.sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query ILIKE 'COPY%FROM STDIN%' AND pid <> pg_backend_pid()`;
        if (copying) [{ id: runId } = { id: undefined }] = await source.sql<{ id: string }[]>`SELECT id FROM jobs.runs WHERE job = 'restore' AND status = 'running'`;
        else await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(runId, 'a COPY of the restore was seen').toBeDefined();
      await ledger.cancel(runId!, { kind: 'manual' });
      const asked = Date.now();
      const run = await restoring;
      expect(Date.now() - asked).toBeLessThan(8_000);
      expect(run).toMatchObject({ status: 'cancelled', steps: [{ name: 'bulk', status: 'cancelled' }] });
      expect(await bulkTarget.sql`SELECT id FROM bulk.rows`).toEqual([{ id: 42 }]);
      expect(await leftovers(bulkTarget.sql)).toEqual([]);
      const [copying] = await bulkTarget.sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'COPY%' AND state <> 'idle' AND pid <> pg_backend_pid()`;
      expect(copying).toBeUndefined();
    });

    it('S3 unreachable when the step reads its tarball: the run fails naming it, nothing replaced, nothing left behind', async () => {
      const settings: RestoreSettings = { bucket, prefix: 'export/', schemas: ['bulk'], target: { url: bulkTarget.url }, concurrency: 1 };
      const restoreTarget = createRestoreTarget(settings.target);
      // The coordinator finds the tarball; its step's S3 is a closed port, as when the server has stopped.
      const unreachable = createS3Client({ endpoint: 'http://127.0.0.1:1' });
      const work = createRestoreStepWork(settings, unreachable, restoreTarget);
      const startSteps = createStartSteps({ mode: 'inline' }, 1, (event) => runStepInline(work, event, { url: source.url }));
      const job = createRestoreJob(settings, startSteps, { s3: s3.client, target: restoreTarget });
      const queued = await ledger.enqueue('restore', 'http', {});
      await runJobWorker(job, { kind: 'run', runId: queued.id }, { leaseMs: 60_000 }, { sql: source.sql, ledger }).catch(() => {});
      unreachable.destroy();
      const run = (await ledger.getWithSteps(queued.id))!;
      expect(run.status).toBe('failed');
      expect(run.error).toMatch(/bulk failed: .*s3:\/\/test-bucket-[\w-]+\/export\/bulk\.tgz.*(ECONNREFUSED|connect)/);
      expect(await bulkTarget.sql`SELECT id FROM bulk.rows`).toEqual([{ id: 42 }]);
      expect(await leftovers(bulkTarget.sql)).toEqual([]);
    });
  });
});
