/**
 * AWS schedule expressions, as EventBridge rules and EventBridge Scheduler take them:
 * `cron(minutes hours day-of-month month day-of-week year)` and `rate(value unit)`.
 */
import { addDays } from '../calendar-date';
import { instantOfWallTime, wallTimeIn } from './zoned-time';

export class ScheduleExpressionError extends Error {
  override readonly name = 'ScheduleExpressionError';
}

export interface AwsCron {
  kind: 'cron';
  expression: string;
  minutes: Set<number>;
  hours: Set<number>;
  /** undefined when the field is `?` (the day is chosen by the other field). */
  daysOfMonth?: Set<number>;
  months: Set<number>;
  /** 1 = Sunday ... 7 = Saturday, as AWS counts. undefined when `?`. */
  daysOfWeek?: Set<number>;
  years: Set<number>;
}

export interface AwsRate {
  kind: 'rate';
  expression: string;
  value: number;
  unit: 'minutes' | 'hours' | 'days';
}

export type ScheduleExpression = AwsCron | AwsRate;

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  allowsQuestion?: boolean;
}

const FIELDS: FieldSpec[] = [
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31, allowsQuestion: true },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day-of-week', min: 1, max: 7, names: WEEKDAYS, allowsQuestion: true },
  { name: 'year', min: 1970, max: 2199 },
];

export function parseScheduleExpression(expression: string): ScheduleExpression {
  const text = expression.trim();
  const rate = /^rate\(\s*(\d+)\s+(minutes?|hours?|days?)\s*\)$/i.exec(text);
  if (rate) {
    const value = Number(rate[1]);
    const unit = rate[2]!.toLowerCase().replace(/s?$/, 's') as AwsRate['unit'];
    if (value < 1) throw new ScheduleExpressionError(`${text}: the rate must be 1 or more`);
    // AWS wants the singular for 1 and the plural otherwise; the meaning is the same either way.
    return { kind: 'rate', expression: text, value, unit };
  }
  const cron = /^cron\((.*)\)$/i.exec(text);
  if (!cron) {
    throw new ScheduleExpressionError(`${JSON.stringify(text)} is neither cron(...) nor rate(...)`);
  }
  const fields = cron[1]!.trim().split(/\s+/);
  if (fields.length !== 6) {
    throw new ScheduleExpressionError(
      `${text}: AWS cron has 6 fields (minutes hours day-of-month month day-of-week year), this has ${fields.length}`,
    );
  }
  const [minutes, hours, dom, month, dow, year] = fields.map((field, i) => parseField(text, field, FIELDS[i]!));
  if ((dom === undefined) === (dow === undefined)) {
    throw new ScheduleExpressionError(`${text}: exactly one of day-of-month and day-of-week must be "?"`);
  }
  return {
    kind: 'cron',
    expression: text,
    minutes: minutes!,
    hours: hours!,
    daysOfMonth: dom,
    months: month!,
    daysOfWeek: dow,
    years: year!,
  };
}

/** A field's values, or undefined for `?`. */
function parseField(expression: string, field: string, spec: FieldSpec): Set<number> | undefined {
  const fail = (why: string) => new ScheduleExpressionError(`${expression}: ${spec.name} field "${field}": ${why}`);
  if (field === '?') {
    if (!spec.allowsQuestion) throw fail('"?" is only allowed in day-of-month and day-of-week');
    return undefined;
  }
  if (/[LW#]/i.test(field.replace(/[A-Z]{3}/gi, (name) => (spec.names?.includes(name.toUpperCase()) ? '' : name)))) {
    throw fail('L, W and # are not supported here (npm run schedule does not expand them)');
  }
  const value = (token: string): number => {
    const named = spec.names?.indexOf(token.toUpperCase()) ?? -1;
    const n = named >= 0 ? named + 1 : /^\d+$/.test(token) ? Number(token) : NaN;
    if (!Number.isInteger(n) || n < spec.min || n > spec.max) throw fail(`"${token}" is not a value from ${spec.min} to ${spec.max}`);
    return n;
  };
  const values = new Set<number>();
  for (const item of field.split(',')) {
    const [range, stepText, extra] = item.split('/');
    if (extra !== undefined || range === undefined || range === '') throw fail(`cannot read "${item}"`);
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw fail(`the step in "${item}" must be a whole number, 1 or more`);
    let from: number;
    let to: number;
    if (range === '*') {
      [from, to] = [spec.min, spec.max];
    } else if (range.includes('-')) {
      const [a, b, more] = range.split('-');
      if (more !== undefined || !a || !b) throw fail(`cannot read the range "${range}"`);
      [from, to] = [value(a), value(b)];
      if (from > to) throw fail(`the range "${range}" runs backwards`);
    } else {
      from = value(range);
      // `5/15` means from 5 to the end in steps of 15, as in AWS's own examples (`0/15`).
      to = stepText === undefined ? from : spec.max;
    }
    for (let n = from; n <= to; n += step) values.add(n);
  }
  return values;
}

function dayMatches(cron: AwsCron, date: string): boolean {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  if (!cron.years.has(y) || !cron.months.has(m)) return false;
  if (cron.daysOfMonth) return cron.daysOfMonth.has(d);
  const weekday = new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 1;
  return cron.daysOfWeek!.has(weekday);
}

/**
 * The instants at which `cron`, evaluated in `evaluationZone` (UTC for EventBridge rules, the
 * schedule's time zone for EventBridge Scheduler), fires during calendar day `day` of `dayZone`.
 * Wall times that do not exist (clocks going forward) are skipped; wall times that happen twice
 * (clocks going back) fire once, at the first, as EventBridge Scheduler documents.
 */
export function cronRunsOnDay(cron: AwsCron, evaluationZone: string, day: string, dayZone: string): Date[] {
  const runs: Date[] = [];
  // Two zones are never more than 26 hours apart, so two days either side cover the day.
  for (let offset = -2; offset <= 2; offset++) {
    const localDate = addDays(day, offset);
    if (!dayMatches(cron, localDate)) continue;
    for (const hour of [...cron.hours].sort((a, b) => a - b)) {
      for (const minute of [...cron.minutes].sort((a, b) => a - b)) {
        const at = instantOfWallTime(evaluationZone, localDate, hour, minute);
        if (at && wallTimeIn(dayZone, at).date === day) runs.push(at);
      }
    }
  }
  return runs.sort((a, b) => a.getTime() - b.getTime());
}

export function describeRate(rate: AwsRate): string {
  const unit = rate.value === 1 ? rate.unit.replace(/s$/, '') : rate.unit;
  return `every ${rate.value === 1 ? '' : `${rate.value} `}${unit}`;
}
