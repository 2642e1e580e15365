/**
 * The job's "today" and run time with the process in New York and the database session in
 * Auckland: neither zone may leak into the result.
 */
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { logger } from '../../lib/logger';
import { createWaterTables } from '../../scripts/sample-database/water-tables';
import { addTimeLimitedWorkflows } from '../../lib/time-limited/add-time-limited-workflows';
import { addDays } from '../../lib/calendar-date';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { addedRows, addLicence, SETTINGS, truncateWaterTables } from './time-limited-fixtures';

const previousTz = process.env.TZ;
process.env.TZ = 'America/New_York';

let db: TestDatabase;
let auckland: Sql;

beforeAll(async () => {
  db = await createTestDatabase('waj_time_limited_tz');
  await createWaterTables(db.sql);
  auckland = postgres(db.url, { max: 1, onnotice: () => {}, connection: { TimeZone: 'Pacific/Auckland' } });
  vi.spyOn(logger, 'info').mockImplementation(() => {});
});
afterAll(async () => {
  await auckland?.end();
  await db?.drop();
  if (previousTz === undefined) delete process.env.TZ;
  else process.env.TZ = previousTz;
});
beforeEach(async () => truncateWaterTables(db.sql));

it('the process and the database session really are in other zones', async () => {
  expect(new Date('2026-07-15T12:00:00Z').getTimezoneOffset()).toBe(240);
  const [{ zone }] = await auckland<[{ zone: string }]>`SELECT current_setting('TimeZone') AS zone`;
  expect(zone).toBe('Pacific/Auckland');
});

describe.each([
  // instant of the run, London's date then, and what UTC, New York or Auckland would wrongly say
  ['2026-06-30T23:30:00Z', '2026-07-01'], // summer midnight: London is an hour ahead of UTC
  ['2026-03-29T00:30:00Z', '2026-03-29'], // spring DST change, before 01:00 GMT (New York: 28th)
  ['2026-03-29T01:30:00Z', '2026-03-29'], // after it (02:30 BST)
  ['2026-10-24T23:30:00Z', '2026-10-25'], // the night of the autumn change, still BST (UTC: 24th)
  ['2026-10-25T00:30:00Z', '2026-10-25'], // 01:30 BST, the first 01:30
  ['2026-10-25T01:30:00Z', '2026-10-25'], // 01:30 GMT, the second 01:30
  ['2026-12-31T23:30:00Z', '2026-12-31'], // winter: London is UTC (Auckland: already 2027)
])('a run at %s', (instant, londonToday) => {
  it(`applies the rules for ${londonToday} and stamps the run time in UTC`, async () => {
    const due = await addLicence(db.sql, { chargeVersions: [{ elements: [[addDays(londonToday, 49)]] }] });
    await addLicence(db.sql, { chargeVersions: [{ elements: [[addDays(londonToday, 50)]] }] });
    await addLicence(db.sql, { expiredDate: londonToday });
    const result = await addTimeLimitedWorkflows(auckland, SETTINGS, new Date(instant));
    expect(result.today).toBe(londonToday);
    expect(result.count).toBe(1);
    const rows = await addedRows(db.sql);
    expect(rows.map((r) => r.licence_id)).toEqual([due.licenceId]);
    const utcWallClock = instant.replace('T', ' ').replace('Z', '');
    expect(rows[0]!.date_created).toBe(utcWallClock);
    expect(rows[0]!.date_updated).toBe(utcWallClock);
  });
});
