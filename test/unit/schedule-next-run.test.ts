import { describe, expect, it } from 'vitest';
import { createJobOverview } from '../../lib/jobs/job-overview';
import { nextRunAfter, readScheduleSettings, summariseSchedule } from '../../lib/schedule/next-run';

/** The environment serverless.yml gives listRuns (see its `environment`), as `sls print` resolves it. */
const ENV = {
  EXPORT_SCHEDULE_RATE: 'cron(0 3 * * ? *)',
  EXPORT_SCHEDULE_ENABLED: 'false',
  EXPORT_SCHEDULE_METHOD: 'eventBus',
  EXPORT_SCHEDULE_TIMEZONE: 'UTC',
  TIME_LIMITED_SCHEDULE_RATE: 'cron(15 20 * * ? *)',
  TIME_LIMITED_SCHEDULE_ENABLED: 'true',
  TIME_LIMITED_SCHEDULE_METHOD: 'scheduler',
  TIME_LIMITED_SCHEDULE_TIMEZONE: 'Europe/London',
};

function schedule(job: string, env: Record<string, string> = ENV) {
  const found = readScheduleSettings(env).find((s) => s.job === job);
  if (!found) throw new Error(`no schedule for ${job}`);
  return found;
}

describe('readScheduleSettings', () => {
  it('reads each worker schedule from the environment, as readSchedules reads serverless.yml', () => {
    expect(readScheduleSettings(ENV).map(({ job, enabled, method, timeZone, expression }) => ({ job, enabled, method, timeZone, expression: expression.expression }))).toEqual([
      { job: 'export', enabled: false, method: 'eventBus', timeZone: 'UTC', expression: 'cron(0 3 * * ? *)' },
      { job: 'time-limited', enabled: true, method: 'scheduler', timeZone: 'Europe/London', expression: 'cron(15 20 * * ? *)' },
    ]);
  });

  it('has no schedule for a job whose variables are not set, and refuses an expression AWS would not take', () => {
    expect(readScheduleSettings({})).toEqual([]);
    expect(() => readScheduleSettings({ EXPORT_SCHEDULE_RATE: 'cron(0 3 * * *)' })).toThrow(/6 fields/);
  });
});

describe('nextRunAfter', () => {
  it('gives 20:15 UK time today when it has not passed, tomorrow when it has, in GMT and in BST', () => {
    const timeLimited = schedule('time-limited');
    expect(nextRunAfter(timeLimited, new Date('2026-11-25T12:00:00Z'), 'Europe/London')?.toISOString()).toBe('2026-11-25T20:15:00.000Z');
    expect(nextRunAfter(timeLimited, new Date('2026-11-25T20:15:00Z'), 'Europe/London')?.toISOString()).toBe('2026-11-26T20:15:00.000Z');
    expect(nextRunAfter(timeLimited, new Date('2026-07-01T19:00:00Z'), 'Europe/London')?.toISOString()).toBe('2026-07-01T19:15:00.000Z');
  });

  it('finds the next run of a schedule that fires once a year', () => {
    const yearly = schedule('export', { EXPORT_SCHEDULE_RATE: 'cron(0 9 1 JAN ? *)' });
    expect(nextRunAfter(yearly, new Date('2026-01-02T00:00:00Z'), 'Europe/London')?.toISOString()).toBe('2027-01-01T09:00:00.000Z');
  });
});

describe('summariseSchedule', () => {
  it('shows the time in Europe/London with its zone name, and a disabled schedule as disabled', () => {
    expect(summariseSchedule(schedule('export'), new Date('2026-07-01T12:00:00Z'))).toEqual({
      expression: 'cron(0 3 * * ? *)',
      enabled: false,
      timeZone: 'UTC',
      description: 'cron(0 3 * * ? *) in UTC',
      next: { at: '2026-07-02T03:00:00.000Z', date: '2026-07-02', time: '04:00', zoneName: 'BST', timeZone: 'Europe/London' },
    });
  });

  it('gives no next time for a rate, which counts from deployment', () => {
    const rate = schedule('export', { EXPORT_SCHEDULE_RATE: 'rate(6 hours)' });
    expect(summariseSchedule(rate, new Date())).toMatchObject({ next: null, description: 'every 6 hours, counted from deployment', enabled: true });
  });
});

describe('createJobOverview', () => {
  it('answers each job with its schedule, and the export with its configured schemas', () => {
    const overview = createJobOverview({ ...ENV, EXPORT_SCHEMAS: 'water,crm' });
    const now = new Date('2026-11-25T12:00:00Z');
    expect(overview('export', now)).toMatchObject({ schemas: ['water', 'crm'], schedule: { enabled: false } });
    expect(overview('time-limited', now)).toEqual({ schedule: expect.objectContaining({ enabled: true, next: expect.objectContaining({ time: '20:15', zoneName: 'GMT' }) }) });
    expect(createJobOverview({})('time-limited', now)).toEqual({ schedule: null });
  });
});
