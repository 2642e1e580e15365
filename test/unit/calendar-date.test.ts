/**
 * "Today" for the time-limited job is the calendar date in Europe/London, whatever zone the
 * process runs in. This file puts its own process in New York time first and checks that took.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { addDays, calendarDateIn } from '../../lib/calendar-date';

const previousTz = process.env.TZ;
// Node resets its zone cache when TZ is assigned, so this applies from here on in this process.
process.env.TZ = 'America/New_York';
afterAll(() => {
  if (previousTz === undefined) delete process.env.TZ;
  else process.env.TZ = previousTz;
});

describe('the process really is in New York time', () => {
  it('has New York offsets in winter and summer', () => {
    expect(new Date('2026-01-15T12:00:00Z').getTimezoneOffset()).toBe(300);
    expect(new Date('2026-07-15T12:00:00Z').getTimezoneOffset()).toBe(240);
    expect(new Date('2026-07-01T02:00:00Z').getDate()).toBe(30); // still June 30 locally
  });
});

describe('calendarDateIn Europe/London', () => {
  const london = (iso: string) => calendarDateIn('Europe/London', new Date(iso));

  it.each([
    // Around midnight in summer (BST, UTC+1): 23:30Z is already the next day in London.
    ['2026-06-30T22:59:59.999Z', '2026-06-30'],
    ['2026-06-30T23:00:00Z', '2026-07-01'],
    ['2026-06-30T23:30:00Z', '2026-07-01'],
    // Around midnight in winter (GMT, UTC+0).
    ['2026-01-31T23:59:59.999Z', '2026-01-31'],
    ['2026-02-01T00:00:00Z', '2026-02-01'],
    ['2026-12-31T23:30:00Z', '2026-12-31'],
    // Clocks go forward on Sunday 29 March 2026 at 01:00 GMT.
    ['2026-03-28T23:30:00Z', '2026-03-28'],
    ['2026-03-29T00:30:00Z', '2026-03-29'],
    ['2026-03-29T01:30:00Z', '2026-03-29'],
    ['2026-03-29T22:59:59Z', '2026-03-29'],
    ['2026-03-29T23:00:00Z', '2026-03-30'],
    // Clocks go back on Sunday 25 October 2026 at 01:00 GMT (02:00 BST).
    ['2026-10-24T22:59:59Z', '2026-10-24'],
    ['2026-10-24T23:30:00Z', '2026-10-25'],
    ['2026-10-25T00:30:00Z', '2026-10-25'],
    ['2026-10-25T01:30:00Z', '2026-10-25'],
    ['2026-10-25T23:30:00Z', '2026-10-25'],
    ['2026-10-26T00:00:00Z', '2026-10-26'],
  ])('at %s it is %s', (instant, expected) => {
    expect(london(instant)).toBe(expected);
  });

  it('differs from the process zone where it should', () => {
    // 00:30Z on 29 March is still 28 March in New York.
    expect(new Date('2026-03-29T00:30:00Z').getDate()).toBe(28);
    expect(london('2026-03-29T00:30:00Z')).toBe('2026-03-29');
  });

  it('works for other zones and rejects unknown ones and invalid dates', () => {
    expect(calendarDateIn('UTC', new Date('2026-06-30T23:30:00Z'))).toBe('2026-06-30');
    expect(calendarDateIn('Pacific/Auckland', new Date('2026-06-30T12:30:00Z'))).toBe('2026-07-01');
    expect(() => calendarDateIn('Mars/Olympus_Mons', new Date())).toThrow(RangeError);
    expect(() => calendarDateIn('Europe/London', new Date('nope'))).toThrow(RangeError);
  });
});

describe('addDays', () => {
  it('adds and subtracts calendar days across month, year and DST boundaries', () => {
    expect(addDays('2026-06-10', 49)).toBe('2026-07-29');
    expect(addDays('2026-03-28', 1)).toBe('2026-03-29');
    expect(addDays('2026-03-29', 1)).toBe('2026-03-30');
    expect(addDays('2026-10-25', 1)).toBe('2026-10-26');
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(addDays('2028-02-28', 1)).toBe('2028-02-29');
    expect(addDays('2026-01-01', -1)).toBe('2025-12-31');
    expect(() => addDays('10/06/2026', 1)).toThrow(RangeError);
  });
});
