/**
 * Calendar dates ('YYYY-MM-DD') in a named time zone. Intl does the zone arithmetic, so the
 * answer does not depend on process.env.TZ or the database's TimeZone setting.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    // Throws a RangeError for an unknown zone, which is what a caller passing one deserves.
    formatter = new Intl.DateTimeFormat('en-GB', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** The calendar date in `timeZone` at the instant `at`, as 'YYYY-MM-DD'. */
export function calendarDateIn(timeZone: string, at: Date): string {
  if (Number.isNaN(at.getTime())) throw new RangeError('calendarDateIn: invalid Date');
  const parts = formatterFor(timeZone).formatToParts(at);
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year').padStart(4, '0')}-${part('month')}-${part('day')}`;
}

/** 'YYYY-MM-DD' plus `days` (may be negative), in plain calendar arithmetic. */
export function addDays(date: string, days: number): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!match) throw new RangeError(`Not a YYYY-MM-DD date: ${JSON.stringify(date)}`);
  const utc = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]) + days));
  return utc.toISOString().slice(0, 10);
}
