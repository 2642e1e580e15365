import { describe, expect, it } from 'vitest';
import { jobNameOf, readSchedules } from '../../lib/schedule/declared-schedules';
import type { ResolvedServerlessConfig } from '../../lib/schedule/declared-schedules';
import { formatDayPlan, planDay } from '../../scripts/day-of-jobs';

/** What `sls print --format json` gives for the schedules serverless.yml declares (a fixture copy). */
const RESOLVED: ResolvedServerlessConfig = {
  functions: {
    exportApi: { name: 'water-abstraction-jobs-dev-exportApi', events: [{ http: { path: 'jobs/export', method: 'any' } }] },
    exportWorker: {
      name: 'water-abstraction-jobs-dev-exportWorker',
      events: [{ schedule: { rate: ['cron(0 3 * * ? *)'], enabled: false, input: { trigger: 'schedule' } } }],
    },
    timeLimitedWorker: {
      name: 'water-abstraction-jobs-dev-timeLimitedWorker',
      events: [
        { schedule: { method: 'scheduler', rate: ['cron(15 20 * * ? *)'], timezone: 'Europe/London', input: { trigger: 'schedule' } } },
      ],
    },
  },
};

describe('jobNameOf', () => {
  it.each([
    ['exportWorker', 'export'],
    ['timeLimitedWorker', 'time-limited'],
    ['returnsDueDateWorker', 'returns-due-date'],
    ['importNALDDataWorker', 'import-nald-data'],
    ['cleaner', 'cleaner'],
  ])('%s → %s', (key, job) => expect(jobNameOf(key)).toBe(job));
});

describe('readSchedules', () => {
  it('reads each schedule with its zone, method and enabled flag', () => {
    const schedules = readSchedules(RESOLVED);
    expect(schedules.map(({ expression, ...rest }) => ({ ...rest, expression: expression.expression }))).toEqual([
      {
        functionKey: 'exportWorker',
        functionName: 'water-abstraction-jobs-dev-exportWorker',
        job: 'export',
        expression: 'cron(0 3 * * ? *)',
        enabled: false,
        method: 'eventBus',
        timeZone: 'UTC',
      },
      {
        functionKey: 'timeLimitedWorker',
        functionName: 'water-abstraction-jobs-dev-timeLimitedWorker',
        job: 'time-limited',
        expression: 'cron(15 20 * * ? *)',
        enabled: true,
        method: 'scheduler',
        timeZone: 'Europe/London',
      },
    ]);
  });

  it('takes a bare expression string, a single rate, and a list of rates', () => {
    const schedules = readSchedules({
      functions: {
        aWorker: { events: ['not an object', { schedule: 'rate(10 minutes)' }] },
        bWorker: { events: [{ schedule: { rate: 'cron(0 1 * * ? *)' } }, { schedule: { rate: ['cron(0 2 * * ? *)', 'cron(0 4 * * ? *)'] } }] },
        empty: null,
      },
    });
    expect(schedules.map((s) => `${s.job} ${s.expression.expression}`)).toEqual([
      'a rate(10 minutes)',
      'b cron(0 1 * * ? *)',
      'b cron(0 2 * * ? *)',
      'b cron(0 4 * * ? *)',
    ]);
  });

  it('rejects what it cannot read, naming the function', () => {
    expect(() => readSchedules({ functions: { xWorker: { events: [{ schedule: { rate: 'cron(0 3 L * ? *)' } }] } } })).toThrow(
      /L, W and # are not supported/,
    );
    expect(() => readSchedules({ functions: { xWorker: { events: [{ schedule: { rate: [] } }] } } })).toThrow(/functions\.xWorker/);
    expect(() => readSchedules({ functions: { xWorker: { events: [{ schedule: { rate: 'cron(0 3 * * ? *)', timezone: 'Europe/London' } }] } } })).toThrow(
      /timezone needs method: scheduler/,
    );
  });
});

describe('planDay and formatDayPlan', () => {
  const schedules = readSchedules(RESOLVED);

  it('a summer day in London: export (disabled) at 04:00 BST, time-limited at 20:15 BST', () => {
    const plan = planDay(schedules, '2026-07-15', 'Europe/London');
    expect(plan.runs.map((r) => [r.time, r.zoneName, r.schedule.job, r.schedule.enabled])).toEqual([
      ['04:00', 'BST', 'export', false],
      ['20:15', 'BST', 'time-limited', true],
    ]);
  });

  it('the same schedules in UTC on a summer and a winter day: time-limited moves, export does not', () => {
    expect(planDay(schedules, '2026-07-15', 'UTC').runs.map((r) => `${r.time} ${r.schedule.job}`)).toEqual(['03:00 export', '19:15 time-limited']);
    expect(planDay(schedules, '2026-01-15', 'UTC').runs.map((r) => `${r.time} ${r.schedule.job}`)).toEqual(['03:00 export', '20:15 time-limited']);
  });

  it('on the day the clocks go forward, UTC shows time-limited an hour earlier than the day before', () => {
    expect(planDay(schedules, '2026-03-28', 'UTC').runs.map((r) => r.time)).toEqual(['03:00', '20:15']);
    expect(planDay(schedules, '2026-03-29', 'UTC').runs.map((r) => r.time)).toEqual(['03:00', '19:15']);
    expect(planDay(schedules, '2026-03-29', 'Europe/London').runs.map((r) => `${r.time} ${r.zoneName}`)).toEqual(['04:00 BST', '20:15 BST']);
  });

  it('puts runs in time order whatever order the functions are declared in', () => {
    const reversed = readSchedules({ functions: { lateWorker: { events: [{ schedule: 'cron(0 22 * * ? *)' }] }, earlyWorker: { events: [{ schedule: 'cron(0 1 * * ? *)' }] } } });
    expect(planDay(reversed, '2026-01-15', 'UTC').runs.map((r) => r.schedule.job)).toEqual(['early', 'late']);
  });

  it('prints time, job, function, expression and a disabled marker; rate schedules as a summary', () => {
    const withRate = [...schedules, ...readSchedules({ functions: { pollWorker: { events: [{ schedule: 'rate(15 minutes)' }] } } })];
    const text = formatDayPlan(planDay(withRate, '2026-07-15', 'Europe/London'));
    const lines = text.split('\n');
    expect(lines[0]).toBe('Jobs on 2026-07-15 (times in Europe/London)');
    expect(lines[2]).toMatch(/^TIME\s+JOB\s+FUNCTION\s+SCHEDULE\s+NOTE$/);
    expect(lines[3]).toMatch(/^04:00 BST\s+export\s+exportWorker\s+cron\(0 3 \* \* \? \*\) \(EventBridge rule, UTC\)\s+DISABLED/);
    expect(lines[4]).toMatch(/^20:15 BST\s+time-limited\s+timeLimitedWorker\s+cron\(15 20 \* \* \? \*\) \(EventBridge Scheduler, Europe\/London\)$/);
    expect(lines[5]).toMatch(/^every 15 minutes\s+poll\s+pollWorker\s+rate\(15 minutes\) \(EventBridge rule, UTC\), counted from deployment$/);
    // A job with no schedule declared is listed as run only on demand.
    expect(lines.slice(6)).toEqual(['', 'On demand only, no schedule: restore (POST /jobs/restore, or an export with {"restore": true})']);
  });

  it('says so when nothing runs', () => {
    expect(formatDayPlan(planDay([], '2026-07-15', 'UTC'))).toContain('No scheduled runs on this day.');
  });
});
