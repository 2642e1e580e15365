import { afterAll, describe, expect, it } from 'vitest';
import { cronRunsOnDay, describeRate, parseScheduleExpression, ScheduleExpressionError } from '../../lib/schedule/schedule-expression';
import type { AwsCron } from '../../lib/schedule/schedule-expression';
import { instantOfWallTime } from '../../lib/schedule/zoned-time';

// The process zone must not matter: run these in one that is neither UTC nor London.
const previousTz = process.env.TZ;
process.env.TZ = 'Asia/Kolkata';
afterAll(() => {
  if (previousTz === undefined) delete process.env.TZ;
  else process.env.TZ = previousTz;
});

const cron = (expression: string) => parseScheduleExpression(expression) as AwsCron;
const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('parseScheduleExpression', () => {
  it('reads the six AWS cron fields with lists, ranges, steps, names and ?', () => {
    const parsed = cron('cron(0/15 8-10,18 ? JAN-MAR,DEC MON-FRI 2026-2027)');
    expect([...parsed.minutes]).toEqual([0, 15, 30, 45]);
    expect([...parsed.hours]).toEqual([8, 9, 10, 18]);
    expect(parsed.daysOfMonth).toBeUndefined();
    expect([...parsed.months]).toEqual([1, 2, 3, 12]);
    expect([...parsed.daysOfWeek!]).toEqual([2, 3, 4, 5, 6]);
    expect([...parsed.years]).toEqual([2026, 2027]);
  });

  it('reads steps from a start value and from *', () => {
    expect([...cron('cron(5/20 */6 * * ? *)').minutes]).toEqual([5, 25, 45]);
    expect([...cron('cron(5/20 */6 * * ? *)').hours]).toEqual([0, 6, 12, 18]);
    expect([...cron('cron(0 0 1-10/3 * ? *)').daysOfMonth!]).toEqual([1, 4, 7, 10]);
  });

  it('reads rate expressions, singular or plural', () => {
    expect(parseScheduleExpression('rate(5 minutes)')).toMatchObject({ kind: 'rate', value: 5, unit: 'minutes' });
    expect(parseScheduleExpression('rate(1 hour)')).toMatchObject({ kind: 'rate', value: 1, unit: 'hours' });
    expect(describeRate(parseScheduleExpression('rate(1 day)') as never)).toBe('every day');
    expect(describeRate(parseScheduleExpression('rate(10 minutes)') as never)).toBe('every 10 minutes');
  });

  it.each([
    ['cron(0 3 * * *)', /6 fields/],
    ['cron(0 3 * * * *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 3 ? * ? *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 3 L * ? *)', /L, W and # are not supported/],
    ['cron(0 3 ? * 6L *)', /L, W and # are not supported/],
    ['cron(0 3 ? * FRI#2 *)', /L, W and # are not supported/],
    ['cron(0 3 15W * ? *)', /L, W and # are not supported/],
    ['cron(60 3 * * ? *)', /minutes field "60": "60" is not a value from 0 to 59/],
    ['cron(0 22-2 * * ? *)', /runs backwards/],
    ['cron(? 3 * * ? *)', /only allowed in day-of-month and day-of-week/],
    ['cron(0 3 * * ? *', /neither cron/],
    ['rate(0 minutes)', /1 or more/],
    ['rate(5 weeks)', /neither cron/],
  ])('rejects %s clearly', (expression, message) => {
    expect(() => parseScheduleExpression(expression)).toThrow(ScheduleExpressionError);
    expect(() => parseScheduleExpression(expression)).toThrow(message);
  });

  it('accepts month and weekday names that contain L or W', () => {
    expect([...cron('cron(0 3 ? JUL WED *)').daysOfWeek!]).toEqual([4]);
  });
});

describe('instantOfWallTime', () => {
  it('finds the instant of a London wall time in summer and winter', () => {
    expect(instantOfWallTime('Europe/London', '2026-07-01', 20, 15)?.toISOString()).toBe('2026-07-01T19:15:00.000Z');
    expect(instantOfWallTime('Europe/London', '2026-01-01', 20, 15)?.toISOString()).toBe('2026-01-01T20:15:00.000Z');
  });
  it('has no instant for a wall time the clocks skip, and the first of a repeated one', () => {
    expect(instantOfWallTime('Europe/London', '2026-03-29', 1, 30)).toBeUndefined();
    expect(instantOfWallTime('Europe/London', '2026-10-25', 1, 30)?.toISOString()).toBe('2026-10-25T00:30:00.000Z');
  });
});

describe('cronRunsOnDay', () => {
  const daily2015 = cron('cron(15 20 * * ? *)');

  it('a 20:15 Europe/London schedule is 19:15 UTC on a summer day and 20:15 UTC on a winter day', () => {
    expect(iso(cronRunsOnDay(daily2015, 'Europe/London', '2026-07-15', 'UTC'))).toEqual(['2026-07-15T19:15:00.000Z']);
    expect(iso(cronRunsOnDay(daily2015, 'Europe/London', '2026-01-15', 'UTC'))).toEqual(['2026-01-15T20:15:00.000Z']);
  });

  it('on the DST-change days it moves in UTC and stays at 20:15 in London', () => {
    expect(iso(cronRunsOnDay(daily2015, 'Europe/London', '2026-03-29', 'UTC'))).toEqual(['2026-03-29T19:15:00.000Z']);
    expect(iso(cronRunsOnDay(daily2015, 'Europe/London', '2026-03-28', 'UTC'))).toEqual(['2026-03-28T20:15:00.000Z']);
    expect(iso(cronRunsOnDay(daily2015, 'Europe/London', '2026-10-25', 'UTC'))).toEqual(['2026-10-25T20:15:00.000Z']);
    expect(iso(cronRunsOnDay(daily2015, 'Europe/London', '2026-10-24', 'UTC'))).toEqual(['2026-10-24T19:15:00.000Z']);
    expect(iso(cronRunsOnDay(daily2015, 'Europe/London', '2026-10-25', 'Europe/London'))).toEqual(['2026-10-25T20:15:00.000Z']);
  });

  it('a UTC rule shifts in London time instead, and can land on another London day', () => {
    const utc2330 = cron('cron(30 23 * * ? *)');
    // 23:30 UTC in summer is 00:30 BST the next day: on 1 July in London it is the run of 30 June UTC.
    expect(iso(cronRunsOnDay(utc2330, 'UTC', '2026-07-01', 'Europe/London'))).toEqual(['2026-06-30T23:30:00.000Z']);
    expect(iso(cronRunsOnDay(utc2330, 'UTC', '2026-01-01', 'Europe/London'))).toEqual(['2026-01-01T23:30:00.000Z']);
  });

  it('skips a London wall time that does not exist and runs a repeated one once', () => {
    const at0130 = cron('cron(30 1 * * ? *)');
    expect(cronRunsOnDay(at0130, 'Europe/London', '2026-03-29', 'Europe/London')).toEqual([]);
    expect(iso(cronRunsOnDay(at0130, 'Europe/London', '2026-10-25', 'Europe/London'))).toEqual(['2026-10-25T00:30:00.000Z']);
  });

  it('an hourly UTC rule gives 23 runs on the short London day and 25 on the long one', () => {
    const hourly = cron('cron(0 * * * ? *)');
    expect(cronRunsOnDay(hourly, 'UTC', '2026-03-29', 'Europe/London')).toHaveLength(23);
    expect(cronRunsOnDay(hourly, 'UTC', '2026-10-25', 'Europe/London')).toHaveLength(25);
    expect(cronRunsOnDay(hourly, 'UTC', '2026-06-10', 'Europe/London')).toHaveLength(24);
  });

  it('honours day-of-week, day-of-month, month and year', () => {
    const weekdays = cron('cron(0 9 ? * MON-FRI *)');
    expect(cronRunsOnDay(weekdays, 'UTC', '2026-06-12', 'UTC')).toHaveLength(1); // Friday
    expect(cronRunsOnDay(weekdays, 'UTC', '2026-06-13', 'UTC')).toHaveLength(0); // Saturday
    const sundays = cron('cron(0 9 ? * 1 *)');
    expect(cronRunsOnDay(sundays, 'UTC', '2026-06-14', 'UTC')).toHaveLength(1);
    const firstOfQuarter = cron('cron(0 6 1 1,4,7,10 ? 2026)');
    expect(cronRunsOnDay(firstOfQuarter, 'UTC', '2026-04-01', 'UTC')).toHaveLength(1);
    expect(cronRunsOnDay(firstOfQuarter, 'UTC', '2026-04-02', 'UTC')).toHaveLength(0);
    expect(cronRunsOnDay(firstOfQuarter, 'UTC', '2027-04-01', 'UTC')).toHaveLength(0);
  });

  it('a weekday rule in one zone is judged by that zone\'s weekday', () => {
    // Monday 00:30 in Auckland (NZST, UTC+12) is Sunday 12:30 UTC.
    const mondays = cron('cron(30 0 ? * MON *)');
    expect(iso(cronRunsOnDay(mondays, 'Pacific/Auckland', '2026-06-14', 'UTC'))).toEqual(['2026-06-14T12:30:00.000Z']);
  });
});
