/**
 * How the time-limited job behaves as a whole: the deterministic choice of one row per licence,
 * re-runs, concurrent runs, all-or-nothing on failure, and its log lines.
 */
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { logger } from '../../lib/logger';
import { createWaterTables } from '../../scripts/sample-database/water-tables';
import { addTimeLimitedWorkflows, TIME_LIMITED_LOCK_KEY } from '../../lib/time-limited/add-time-limited-workflows';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { addedRows, addLicence, addManyQualifyingLicences, day, NOW, SETTINGS, truncateWaterTables } from './time-limited-fixtures';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('waj_time_limited_behaviour');
  await createWaterTables(db.sql);
});
afterAll(async () => db?.drop());
beforeEach(async () => truncateWaterTables(db.sql));
afterEach(() => vi.restoreAllMocks());

const LOW_ID = '00000000-0000-4000-8000-000000000001';
const HIGH_ID = 'ffffffff-ffff-4fff-bfff-fffffffffff1';

async function chosenChargeVersion(licenceId: string): Promise<unknown> {
  const rows = (await addedRows(db.sql)).filter((row) => row.licence_id === licenceId);
  expect(rows).toHaveLength(1);
  return (rows[0]!.data as { timeLimitedChargeVersionId: string }).timeLimitedChargeVersionId;
}

describe('one row per licence, chosen deterministically', () => {
  it('two qualifying charge versions: one row, for the one with the latest start date (in either insertion order)', async () => {
    const oldFirst = await addLicence(db.sql, {
      chargeVersions: [{ startDate: '2022-04-01' }, { startDate: '2024-04-01', elements: [[day(30)], [day(5)]] }],
    });
    const newFirst = await addLicence(db.sql, {
      chargeVersions: [{ startDate: '2024-04-01' }, { startDate: '2022-04-01' }],
    });
    const result = await addTimeLimitedWorkflows(db.sql, SETTINGS, NOW);
    expect(result.count).toBe(2);
    expect(await chosenChargeVersion(oldFirst.licenceId)).toBe(oldFirst.chargeVersionIds[1]);
    expect(await chosenChargeVersion(newFirst.licenceId)).toBe(newFirst.chargeVersionIds[0]);
  });

  it('same start date: the greatest charge_version_id wins (in either insertion order)', async () => {
    const a = await addLicence(db.sql, { chargeVersions: [{ id: LOW_ID }, { id: HIGH_ID }] });
    const b = await addLicence(db.sql, {
      chargeVersions: [{ id: HIGH_ID.replace(/1$/, '2') }, { id: LOW_ID.replace(/1$/, '2') }],
    });
    await addTimeLimitedWorkflows(db.sql, SETTINGS, NOW);
    expect(await chosenChargeVersion(a.licenceId)).toBe(HIGH_ID);
    expect(await chosenChargeVersion(b.licenceId)).toBe(HIGH_ID.replace(/1$/, '2'));
  });

  it('a later charge version with nothing due is passed over for the earlier qualifying one', async () => {
    const licence = await addLicence(db.sql, {
      chargeVersions: [{ startDate: '2022-04-01' }, { startDate: '2025-04-01', elements: [[day(400)]] }],
    });
    await addTimeLimitedWorkflows(db.sql, SETTINGS, NOW);
    expect(await chosenChargeVersion(licence.licenceId)).toBe(licence.chargeVersionIds[0]);
  });

  it('several current licence versions: the latest start date, then the greatest id', async () => {
    const byDate = await addLicence(db.sql, {
      licenceVersions: [
        { status: 'current', startDate: '2023-01-01' },
        { status: 'current', startDate: '2021-01-01' },
        { status: 'superseded', startDate: '2025-01-01' },
      ],
    });
    const byId = await addLicence(db.sql, {
      licenceVersions: [
        { id: HIGH_ID.replace(/1$/, '3'), status: 'current', startDate: '2023-01-01' },
        { id: LOW_ID.replace(/1$/, '3'), status: 'current', startDate: '2023-01-01' },
      ],
    });
    const result = await addTimeLimitedWorkflows(db.sql, SETTINGS, NOW);
    expect(result.count).toBe(2);
    const rows = await addedRows(db.sql);
    expect(rows.find((r) => r.licence_id === byDate.licenceId)?.licence_version_id).toBe(byDate.licenceVersionIds[0]);
    expect(rows.find((r) => r.licence_id === byId.licenceId)?.licence_version_id).toBe(HIGH_ID.replace(/1$/, '3'));
  });
});

describe('re-runs and concurrent runs', () => {
  it('a second run adds nothing, on the same day or a later one', async () => {
    await addLicence(db.sql);
    await addLicence(db.sql, { chargeVersions: [{ elements: [[day(-5)]] }] });
    expect((await addTimeLimitedWorkflows(db.sql, SETTINGS, NOW)).count).toBe(2);
    const before = await addedRows(db.sql);
    expect((await addTimeLimitedWorkflows(db.sql, SETTINGS, NOW)).count).toBe(0);
    expect((await addTimeLimitedWorkflows(db.sql, SETTINGS, new Date(NOW.getTime() + 86_400_000))).count).toBe(0);
    expect(await addedRows(db.sql)).toEqual(before);
  });

  it('two runs started together on separate connections add each licence once, and neither fails', async () => {
    const licences = 3000;
    await addManyQualifyingLicences(db.sql, licences);
    const first = postgres(db.url, { max: 1, onnotice: () => {} });
    const second = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      // Open both connections first so the two runs really start together.
      await Promise.all([first`SELECT 1`, second`SELECT 1`]);
      const results = await Promise.all([
        addTimeLimitedWorkflows(first, SETTINGS, NOW),
        addTimeLimitedWorkflows(second, SETTINGS, NOW),
      ]);
      expect(results.map((r) => r.count).sort((x, y) => x - y)).toEqual([0, licences]);
    } finally {
      await Promise.all([first.end(), second.end()]);
    }
    const [counts] = await db.sql<{ rows: number; licences: number }[]>`
      SELECT count(*)::int AS rows, count(DISTINCT licence_id)::int AS licences FROM water.charge_version_workflows
    `;
    expect(counts).toEqual({ rows: licences, licences });
  });

  it('a run waits for the one in progress (advisory lock), then sees the rows it committed', async () => {
    const inFlight = await addLicence(db.sql);
    const other = await addLicence(db.sql);
    const holder = postgres(db.url, { max: 1, onnotice: () => {} });
    const runner = postgres(db.url, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let holding!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    try {
      // Stands in for a first run part way through: holds the lock, has written one row, not committed.
      const firstRun = holder.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${TIME_LIMITED_LOCK_KEY.toString()}::bigint)`;
        await tx`
          INSERT INTO water.charge_version_workflows (licence_id, licence_version_id, status, date_created)
          VALUES (${inFlight.licenceId}, ${inFlight.licenceVersionIds[0]!}, 'to_setup', '2026-06-10 12:00:00')
        `;
        holding();
        await gate;
      });
      await Promise.race([held, firstRun]); // firstRun settles first only if it failed
      const [{ pid }] = await runner<[{ pid: number }]>`SELECT pg_backend_pid() AS pid`;
      const secondRun = addTimeLimitedWorkflows(runner, SETTINGS, NOW);
      await expect.poll(async () => {
        const [lock] = await db.sql`SELECT 1 FROM pg_locks WHERE pid = ${pid} AND locktype = 'advisory' AND NOT granted`;
        return lock !== undefined;
      }, { timeout: 5000, interval: 20 }).toBe(true);
      release();
      await firstRun;
      const result = await secondRun;
      expect(result.count).toBe(1);
      const rows = await db.sql<{ licence_id: string }[]>`SELECT licence_id FROM water.charge_version_workflows ORDER BY date_created`;
      expect(rows.map((r) => r.licence_id).sort()).toEqual([inFlight.licenceId, other.licenceId].sort());
    } finally {
      release(); // so a failed assertion does not leave the stand-in run holding the lock
      await Promise.all([holder.end({ timeout: 5 }), runner.end({ timeout: 5 })]);
    }
  });

  it('a live row written by something else on the same licence version is skipped, not a unique-index error', async () => {
    const licence = await addLicence(db.sql);
    const other = await addLicence(db.sql, { chargeVersions: [{ scheme: 'alcs' }] });
    // A (mis)filed row of another licence holding this licence's version: only the index sees it.
    await db.sql`
      INSERT INTO water.charge_version_workflows (licence_id, licence_version_id, status, date_created)
      VALUES (${other.licenceId}, ${licence.licenceVersionIds[0]!}, 'review', '2026-01-05 10:00:00')
    `;
    const qualifying = await addLicence(db.sql);
    const result = await addTimeLimitedWorkflows(db.sql, SETTINGS, NOW);
    expect(result.count).toBe(1);
    expect((await addedRows(db.sql)).map((r) => r.licence_id)).toEqual([qualifying.licenceId]);
  });
});

describe('all or nothing', () => {
  it('a failure after some rows were inserted leaves no rows, logs the failure and rethrows', async () => {
    for (let i = 0; i < 6; i++) await addLicence(db.sql);
    await db.sql.unsafe(`
      CREATE SEQUENCE water.inserts_seen;
      CREATE FUNCTION water.fail_on_third_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('water.inserts_seen') = 3 THEN
          RAISE EXCEPTION 'injected failure on the third row';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER fail_on_third_insert BEFORE INSERT ON water.charge_version_workflows
        FOR EACH ROW EXECUTE FUNCTION water.fail_on_third_insert();
    `);
    const errors = vi.spyOn(logger, 'error').mockImplementation(() => {});
    try {
      await expect(addTimeLimitedWorkflows(db.sql, SETTINGS, NOW)).rejects.toThrow('injected failure on the third row');
      // The trigger really saw rows before the failing one: the failure came part way through.
      const [seen] = await db.sql<{ last_value: string }[]>`SELECT last_value FROM water.inserts_seen`;
      expect(Number(seen!.last_value)).toBe(3);
      const [{ count }] = await db.sql<[{ count: number }]>`SELECT count(*)::int AS count FROM water.charge_version_workflows`;
      expect(count).toBe(0);
      expect(errors).toHaveBeenCalledWith('Time limited job failed', expect.objectContaining({ error: expect.any(Error) }));
    } finally {
      await db.sql.unsafe(`
        DROP TRIGGER fail_on_third_insert ON water.charge_version_workflows;
        DROP FUNCTION water.fail_on_third_insert();
        DROP SEQUENCE water.inserts_seen;
      `);
    }
    // Once the cause is gone, a re-run adds them all.
    vi.spyOn(logger, 'info').mockImplementation(() => {});
    expect((await addTimeLimitedWorkflows(db.sql, SETTINGS, NOW)).count).toBe(6);
  });
});

describe('logging', () => {
  it('logs "Time limited job complete" with timeTakenMs and count', async () => {
    await addLicence(db.sql);
    await addLicence(db.sql);
    const info = vi.spyOn(logger, 'info').mockImplementation(() => {});
    const result = await addTimeLimitedWorkflows(db.sql, SETTINGS, NOW);
    expect(result).toEqual({ count: 2, timeTakenMs: expect.any(Number), today: '2026-06-10' });
    expect(info).toHaveBeenCalledWith('Time limited job complete', expect.objectContaining({ count: 2, timeTakenMs: result.timeTakenMs }));
  });
});
