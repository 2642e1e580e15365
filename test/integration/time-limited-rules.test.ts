/**
 * One test per rule of "Time limited" in ../shared/reference/jobs.md, against real PostgreSQL.
 * Each test writes only the licence(s) it is about, so it fails if that one rule is broken.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createWaterTables } from '../../scripts/sample-database/water-tables';
import { addTimeLimitedWorkflows } from '../../lib/time-limited/add-time-limited-workflows';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { addedRows, addLicence, day, NOW, SETTINGS, TODAY, truncateWaterTables } from './time-limited-fixtures';
import type { LicenceSpec } from './time-limited-fixtures';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('waj_time_limited_rules');
  await createWaterTables(db.sql);
});
afterAll(async () => db?.drop());
beforeEach(async () => truncateWaterTables(db.sql));

/** Adds one licence, runs the job once, and says whether that licence got a workflow row. */
async function qualifies(spec: LicenceSpec, settings = SETTINGS): Promise<boolean> {
  const { licenceId } = await addLicence(db.sql, spec);
  const result = await addTimeLimitedWorkflows(db.sql, settings, NOW);
  const rows = await addedRows(db.sql);
  expect(result.count).toBe(rows.length);
  expect(result.today).toBe(TODAY);
  return rows.some((row) => row.licence_id === licenceId);
}

const endingOn = (date: string | null): LicenceSpec => ({ chargeVersions: [{ elements: [[date]] }] });

describe('time_limited_end_date against today + days', () => {
  it('today + 49 qualifies', async () => {
    expect(await qualifies(endingOn(day(49)))).toBe(true);
  });
  it('today + 50 does not', async () => {
    expect(await qualifies(endingOn(day(50)))).toBe(false);
  });
  it('honours a different days setting: today + 9 qualifies with days = 10', async () => {
    expect(await qualifies(endingOn(day(9)), { ...SETTINGS, days: 10 })).toBe(true);
  });
  it('honours a different days setting: today + 10 does not with days = 10', async () => {
    expect(await qualifies(endingOn(day(10)), { ...SETTINGS, days: 10 })).toBe(false);
  });
  it('an end date in the past qualifies (no lower bound)', async () => {
    expect(await qualifies(endingOn(day(-800)))).toBe(true);
  });
  it('a purpose with no time-limited end date does not', async () => {
    expect(await qualifies(endingOn(null))).toBe(false);
  });
  it('qualifies when any purpose of any element of the charge version is due', async () => {
    expect(await qualifies({ chargeVersions: [{ elements: [[null, day(400)], [day(300), day(20)]] }] })).toBe(true);
  });
});

describe('the licence', () => {
  it('expired yesterday does not qualify', async () => {
    expect(await qualifies({ expiredDate: day(-1) })).toBe(false);
  });
  it('expiring today does not qualify (counts as expired)', async () => {
    expect(await qualifies({ expiredDate: TODAY })).toBe(false);
  });
  it('expiring tomorrow qualifies', async () => {
    expect(await qualifies({ expiredDate: day(1) })).toBe(true);
  });
  it('revoked (past date) does not qualify', async () => {
    expect(await qualifies({ revokedDate: day(-10) })).toBe(false);
  });
  it('revoked with a future date does not qualify (revoked_date must be null)', async () => {
    expect(await qualifies({ revokedDate: day(30) })).toBe(false);
  });
  it('lapsed (past date) does not qualify', async () => {
    expect(await qualifies({ lapsedDate: day(-10) })).toBe(false);
  });
  it('lapsed with a future date does not qualify (lapsed_date must be null)', async () => {
    expect(await qualifies({ lapsedDate: day(30) })).toBe(false);
  });
  it('without a current licence version does not qualify', async () => {
    expect(await qualifies({ licenceVersions: [{ status: 'superseded', startDate: '2019-04-01' }] })).toBe(false);
  });
  it('with no licence version at all does not qualify', async () => {
    expect(await qualifies({ licenceVersions: [] })).toBe(false);
  });
});

describe('the charge version', () => {
  it('an alcs charge version does not qualify', async () => {
    expect(await qualifies({ chargeVersions: [{ scheme: 'alcs' }] })).toBe(false);
  });
  it('a charge version with an end date does not qualify', async () => {
    expect(await qualifies({ chargeVersions: [{ endDate: day(200) }] })).toBe(false);
  });
  it('a charge version that is not current does not qualify', async () => {
    expect(await qualifies({ chargeVersions: [{ status: 'superseded' }] })).toBe(false);
  });
  it('a due purpose on a non-qualifying charge version does not make another one qualify', async () => {
    const spec: LicenceSpec = {
      chargeVersions: [
        { scheme: 'alcs', elements: [[day(5)]] },
        { scheme: 'sroc', elements: [[day(500)]] },
      ],
    };
    expect(await qualifies(spec)).toBe(false);
  });
  it('a charge element with no purposes does not qualify', async () => {
    expect(await qualifies({ chargeVersions: [{ elements: [[]] }] })).toBe(false);
  });
});

describe('existing workflow rows', () => {
  for (const status of ['to_setup', 'review', 'changes_requested']) {
    it(`a live workflow row (status ${status}) stops it`, async () => {
      expect(await qualifies({ workflows: [{ status }] })).toBe(false);
    });
  }
  it('a live workflow row on another licence version of the licence stops it', async () => {
    const spec: LicenceSpec = {
      licenceVersions: [
        { status: 'superseded', startDate: '2010-01-01' },
        { status: 'current', startDate: '2019-04-01' },
      ],
      workflows: [{ status: 'review' }], // on the first, superseded, version
    };
    expect(await qualifies(spec)).toBe(false);
  });
  it('only soft-deleted workflow rows do not stop it', async () => {
    const spec: LicenceSpec = {
      workflows: [
        { status: 'review', dateDeleted: '2026-02-01 09:00:00' },
        { status: 'to_setup', dateDeleted: '2026-03-01 09:00:00' },
      ],
    };
    expect(await qualifies(spec)).toBe(true);
  });
});

describe('the row it inserts', () => {
  it('has exactly the specified columns and data', async () => {
    const licence = await addLicence(db.sql, {
      licenceVersions: [
        { status: 'superseded', startDate: '2010-01-01' },
        { status: 'current', startDate: '2019-04-01' },
      ],
    });
    const result = await addTimeLimitedWorkflows(db.sql, SETTINGS, new Date('2026-06-10T19:15:42.123Z'));
    expect(result.count).toBe(1);
    const rows = await addedRows(db.sql);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row.charge_version_workflow_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(row).toEqual({
      charge_version_workflow_id: row.charge_version_workflow_id,
      licence_id: licence.licenceId,
      licence_version_id: licence.licenceVersionIds[1],
      status: 'to_setup',
      data: { chargeVersion: null, timeLimitedChargeVersionId: licence.chargeVersionIds[0] },
      created_by: null,
      approver_comments: null,
      // The run time as UTC wall-clock time (timestamp without time zone).
      date_created: '2026-06-10 19:15:42.123',
      date_updated: '2026-06-10 19:15:42.123',
      date_deleted: null,
    });
    // jsonb null, not a missing key and not the string "null".
    const [json] = await db.sql<{ kind: string; has: boolean }[]>`
      SELECT jsonb_typeof(data->'chargeVersion') AS kind, data ? 'chargeVersion' AS has FROM water.charge_version_workflows
    `;
    expect(json).toEqual({ kind: 'null', has: true });
  });

  it('adds one row for each qualifying licence and none for the others', async () => {
    const yes = await Promise.all([addLicence(db.sql), addLicence(db.sql, endingOn(day(-3))), addLicence(db.sql, { expiredDate: day(2) })]);
    await addLicence(db.sql, { revokedDate: day(-1) });
    await addLicence(db.sql, endingOn(day(60)));
    const result = await addTimeLimitedWorkflows(db.sql, SETTINGS, NOW);
    expect(result.count).toBe(3);
    expect((await addedRows(db.sql)).map((r) => r.licence_id).sort()).toEqual(yes.map((l) => l.licenceId).sort());
  });
});
