/**
 * When a job next runs, from the same schedule definitions the template is built from: the
 * listRuns function gets each worker's first schedule event through its environment (serverless.yml
 * reads them from the events themselves), and they are read here with the rules of readSchedules.
 */
import type { Env } from '../config';
import { readSchedules } from './declared-schedules';
import type { DeclaredSchedule } from './declared-schedules';
import { cronRunsOnDay, describeRate } from './schedule-expression';
import type { AwsRate } from './schedule-expression';
import { calendarDateIn, addDays } from '../calendar-date';
import { clockTimeIn } from './zoned-time';

/** The worker whose schedule each variable prefix carries (see listRuns in serverless.yml). */
const SCHEDULE_VARIABLES = { EXPORT_SCHEDULE: 'exportWorker', TIME_LIMITED_SCHEDULE: 'timeLimitedWorker' } as const;

/** How far ahead to look for a cron's next run: a yearly schedule still has one. */
const SEARCH_DAYS = 400;

/** The schedules given to this function's environment, as DeclaredSchedules (none when unset). */
export function readScheduleSettings(env: Env): DeclaredSchedule[] {
  const functions: Record<string, { events: unknown[] }> = {};
  for (const [prefix, functionKey] of Object.entries(SCHEDULE_VARIABLES)) {
    const rate = env[`${prefix}_RATE`]?.trim();
    if (!rate) continue;
    const method = env[`${prefix}_METHOD`]?.trim() || 'eventBus';
    const timezone = env[`${prefix}_TIMEZONE`]?.trim();
    functions[functionKey] = {
      events: [
        {
          schedule: {
            rate,
            enabled: env[`${prefix}_ENABLED`]?.trim() !== 'false',
            method,
            // EventBridge rules are UTC and take no timezone; only the scheduler's is passed on.
            ...(method === 'scheduler' && timezone ? { timezone } : {}),
          },
        },
      ],
    };
  }
  return readSchedules({ functions });
}

export interface ScheduleSummary {
  expression: string;
  enabled: boolean;
  /** The zone the expression is evaluated in (UTC for EventBridge rules). */
  timeZone: string;
  /** For people: "cron(15 20 * * ? *) in Europe/London", "every 6 hours". */
  description: string;
  /** The next run after `now`, shown in `displayZone`; null for a rate (counted from deployment). Given even when disabled: when it would run. */
  next: { at: string; date: string; time: string; zoneName: string; timeZone: string } | null;
}

/** The first run of a cron schedule strictly after `now`, or undefined within SEARCH_DAYS. */
export function nextRunAfter(schedule: DeclaredSchedule, now: Date, displayZone: string): Date | undefined {
  if (schedule.expression.kind !== 'cron') return undefined;
  const today = calendarDateIn(displayZone, now);
  for (let offset = 0; offset <= SEARCH_DAYS; offset++) {
    const next = cronRunsOnDay(schedule.expression, schedule.timeZone, addDays(today, offset), displayZone).find((at) => at > now);
    if (next) return next;
  }
  return undefined;
}

export function summariseSchedule(schedule: DeclaredSchedule, now: Date, displayZone = 'Europe/London'): ScheduleSummary {
  const { expression } = schedule;
  const at = nextRunAfter(schedule, now, displayZone);
  return {
    expression: expression.expression,
    enabled: schedule.enabled,
    timeZone: schedule.timeZone,
    description:
      expression.kind === 'rate'
        ? `${describeRate(expression as AwsRate)}, counted from deployment`
        : `${expression.expression} in ${schedule.timeZone}`,
    next: at ? { at: at.toISOString(), date: calendarDateIn(displayZone, at), ...clockTimeIn(displayZone, at), timeZone: displayZone } : null,
  };
}
