import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { JOB_NAMES } from '../../lib/runs/run';
import { afterEach, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../../scripts/migrate-database';
import { LedgerNotMigratedError } from '../../lib/runs/run-errors';
import { createRunLedger } from '../../lib/runs/run-ledger';
import { createMigratedTestDatabase, createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';

let db: TestDatabase | undefined;

afterEach(async () => {
  await db?.drop();
  db = undefined;
});

async function appliedMigrations(database: TestDatabase) {
  return database.sql<{ id: number; name: string; run_on: Date }[]>`SELECT id, name, run_on FROM jobs.pgmigrations ORDER BY id`;
}

describe('migrateDatabase', () => {
  it('creates jobs.runs on an empty database, keeping its bookkeeping inside the jobs schema', async () => {
    db = await createTestDatabase();
    await migrateDatabase(db.url);

    const tables = await db.sql<{ schema: string; name: string }[]>`
      SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
      WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`;
    expect(tables).toEqual([
      { schema: 'jobs', name: 'pgmigrations' },
      { schema: 'jobs', name: 'run_steps' },
      { schema: 'jobs', name: 'runs' },
      { schema: 'jobs', name: 'schedule_pauses' },
    ]);

    const columns = await db.sql<{ name: string; type: string; nullable: string }[]>`
      SELECT column_name AS name, data_type AS type, is_nullable AS nullable FROM information_schema.columns
      WHERE table_schema = 'jobs' AND table_name = 'runs' ORDER BY ordinal_position`;
    expect(columns.map((c) => `${c.name} ${c.type} ${c.nullable === 'YES' ? 'null' : 'not null'}`)).toEqual([
      'id uuid not null',
      'job text not null',
      'trigger text not null',
      'status text not null',
      'params jsonb not null',
      'attempts integer not null',
      'requested_at timestamp with time zone not null',
      'started_at timestamp with time zone null',
      'finished_at timestamp with time zone null',
      'lease_expires_at timestamp with time zone null',
      'progress jsonb null',
      'result jsonb null',
      'error text null',
      'lambda_request_id text null',
      'snapshot_id text null',
      'as_of timestamp with time zone null',
      'requested_by jsonb null',
      'cancelled_by jsonb null',
    ]);

    const indexes = await db.sql<{ indexdef: string }[]>`
      SELECT indexdef FROM pg_indexes WHERE schemaname = 'jobs' AND tablename = 'runs' ORDER BY indexname`;
    expect(indexes.map((i) => i.indexdef)).toEqual([
      expect.stringMatching(/^CREATE INDEX runs_job_requested_at ON jobs\.runs USING btree \(job, requested_at DESC\)$/),
      expect.stringMatching(/^CREATE UNIQUE INDEX runs_one_active_per_job ON jobs\.runs USING btree \(job\) WHERE \(status = ANY \(ARRAY\['queued'::text, 'running'::text\]\)\)$/),
      expect.stringMatching(/^CREATE UNIQUE INDEX runs_pkey ON jobs\.runs/),
    ]);
  });

  it('creates jobs.run_steps: one step per schema of a run, gone with its run', async () => {
    db = await createMigratedTestDatabase();
    const { sql } = db;

    const columns = await sql<{ name: string; type: string; nullable: string }[]>`
      SELECT column_name AS name, data_type AS type, is_nullable AS nullable FROM information_schema.columns
      WHERE table_schema = 'jobs' AND table_name = 'run_steps' ORDER BY ordinal_position`;
    expect(columns.map((c) => `${c.name} ${c.type} ${c.nullable === 'YES' ? 'null' : 'not null'}`)).toEqual([
      'id uuid not null',
      'run_id uuid not null',
      'position integer not null',
      'name text not null',
      'status text not null',
      'attempts integer not null',
      'lease_expires_at timestamp with time zone null',
      'lambda_request_id text null',
      'queued_at timestamp with time zone not null',
      'started_at timestamp with time zone null',
      'finished_at timestamp with time zone null',
      'progress jsonb null',
      'result jsonb null',
      'error text null',
      'verification jsonb null',
      'snapshot_imported_at timestamp with time zone null',
      'input jsonb null',
      'staged_at timestamp with time zone null',
    ]);

    const [run] = await sql<{ id: string }[]>`INSERT INTO jobs.runs (job, trigger) VALUES ('export', 'http') RETURNING id`;
    const [step] = await sql<{ status: string; attempts: number }[]>`
      INSERT INTO jobs.run_steps (run_id, position, name) VALUES (${run!.id}, 0, 'water') RETURNING status, attempts`;
    expect(step).toEqual({ status: 'queued', attempts: 0 });
    await expect(sql`INSERT INTO jobs.run_steps (run_id, position, name) VALUES (${run!.id}, 1, 'water')`).rejects.toMatchObject({
      code: '23505',
      constraint_name: 'run_steps_one_per_name',
    });
    await expect(
      sql`INSERT INTO jobs.run_steps (run_id, position, name, status) VALUES (${run!.id}, 1, 'crm', 'skipped')`,
    ).rejects.toMatchObject({ code: '23514' });
    await expect(
      sql`INSERT INTO jobs.run_steps (run_id, position, name, status) VALUES (${run!.id}, 1, 'crm', 'running')`,
    ).rejects.toMatchObject({ code: '23514', constraint_name: 'run_steps_running_has_lease' });

    await sql`DELETE FROM jobs.runs WHERE id = ${run!.id}`;
    const [{ count }] = await sql<[{ count: number }]>`SELECT count(*)::int AS count FROM jobs.run_steps`;
    expect(count).toBe(0);
  });

  it('refuses values outside the vocabularies', async () => {
    db = await createMigratedTestDatabase();
    const { sql } = db;

    const [ok] = await sql<{ params: unknown; attempts: number; status: string }[]>`
      INSERT INTO jobs.runs (job, trigger) VALUES ('export', 'http') RETURNING params, attempts, status`;
    expect(ok).toEqual({ params: {}, attempts: 0, status: 'queued' });
    // Every job of the vocabulary (lib/runs/run.ts), the restore included.
    for (const job of JOB_NAMES.filter((name) => name !== 'export')) await sql`INSERT INTO jobs.runs (job, trigger) VALUES (${job}, 'http')`;

    await expect(sql`INSERT INTO jobs.runs (job, trigger) VALUES ('exports', 'http')`).rejects.toMatchObject({ code: '23514' });
    await expect(sql`INSERT INTO jobs.runs (job, trigger) VALUES ('time-limited', 'cron')`).rejects.toMatchObject({ code: '23514' });
    await expect(sql`INSERT INTO jobs.runs (job, trigger, status) VALUES ('time-limited', 'http', 'done')`).rejects.toMatchObject({ code: '23514' });
    await expect(
      sql`INSERT INTO jobs.runs (job, trigger, status) VALUES ('time-limited', 'http', 'running')`,
    ).rejects.toMatchObject({ code: '23514', constraint_name: 'runs_running_has_lease' });
  });

  it('is what an unmigrated database is told to run, by every ledger call', async () => {
    db = await createTestDatabase();
    const ledger = createRunLedger(db.sql);
    await expect(ledger.enqueue('export', 'manual')).rejects.toThrow(LedgerNotMigratedError);
    await expect(ledger.list('export')).rejects.toThrow(/npm run migrate/);
    await migrateDatabase(db.url);
    await expect(ledger.enqueue('export', 'manual')).resolves.toMatchObject({ status: 'queued' });
  });

  it('is a no-op the second time', async () => {
    db = await createTestDatabase();
    await migrateDatabase(db.url);
    const before = await appliedMigrations(db);
    expect(before.length).toBeGreaterThan(0);
    await db.sql`INSERT INTO jobs.runs (job, trigger, status) VALUES ('export', 'manual', 'succeeded')`;

    await migrateDatabase(db.url);

    expect(await appliedMigrations(db)).toEqual(before);
    const [{ count }] = await db.sql<[{ count: number }]>`SELECT count(*)::int AS count FROM jobs.runs`;
    expect(count).toBe(1);
  });

  it('lets concurrent callers through, one after the other', async () => {
    db = await createTestDatabase();

    const outcomes = await Promise.allSettled([migrateDatabase(db.url), migrateDatabase(db.url), migrateDatabase(db.url)]);

    expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : o.status))).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    const applied = await appliedMigrations(db);
    expect(new Set(applied.map((m) => m.name)).size).toBe(applied.length);
    expect(applied.length).toBeGreaterThan(0);
  });
});

describe('npm run migrate', () => {
  /** The command's log lines (the Powertools logger writes JSON, one object a line). */
  function migrate(databaseUrl: string): string[] {
    const result = spawnSync(resolve(import.meta.dirname, '../../node_modules/.bin/tsx'), ['scripts/migrate.ts'], {
      cwd: resolve(import.meta.dirname, '../..'),
      env: { ...process.env, DATABASE_URL: databaseUrl },
      encoding: 'utf8',
    });
    expect(result.status, result.stderr).toBe(0);
    return `${result.stdout}${result.stderr}`
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => (JSON.parse(line) as { message: string }).message);
  }

  it('says once what it did: the migrations it applied, then on a second run that there was nothing to do', async () => {
    db = await createTestDatabase();
    expect(migrate(db.url)).toEqual(['Database migrated']);
    expect(migrate(db.url)).toEqual(['No migrations to apply: the database is up to date']);
  });
});
