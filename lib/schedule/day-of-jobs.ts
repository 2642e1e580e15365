/**
 * "A day of jobs": every schedule declared in serverless.yml (as `sls print` resolves it),
 * expanded into that day's runs in a chosen time zone.
 */
import { cronRunsOnDay, describeRate, parseScheduleExpression, ScheduleExpressionError } from './schedule-expression';
import type { ScheduleExpression } from './schedule-expression';
import { clockTimeIn } from './zoned-time';

/** The parts of the resolved serverless configuration this reads (the rest is ignored). */
export interface ResolvedServerlessConfig {
  functions?: Record<string, { name?: string; events?: unknown[] } | null>;
}

export interface DeclaredSchedule {
  /** The function's key in serverless.yml, e.g. `timeLimitedWorker`. */
  functionKey: string;
  /** The deployed Lambda name, when the resolved configuration gives it. */
  functionName?: string;
  job: string;
  expression: ScheduleExpression;
  enabled: boolean;
  /** `scheduler` (EventBridge Scheduler) or `eventBus` (an EventBridge rule, the default). */
  method: 'scheduler' | 'eventBus';
  /** The zone the expression is evaluated in: the schedule's `timezone`, else UTC. */
  timeZone: string;
}

/** `timeLimitedWorker` → `time-limited`: drop a trailing `Worker`, then kebab-case. */
export function jobNameOf(functionKey: string): string {
  return functionKey
    .replace(/Worker$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Every `schedule` event of every function. A schedule is either a bare expression string or an
 * object whose `rate` is one expression or a list of them (each becomes its own entry).
 */
export function readSchedules(config: ResolvedServerlessConfig): DeclaredSchedule[] {
  const schedules: DeclaredSchedule[] = [];
  for (const [functionKey, fn] of Object.entries(config.functions ?? {})) {
    for (const event of fn?.events ?? []) {
      if (!isRecord(event) || !('schedule' in event)) continue;
      const schedule = event.schedule;
      const where = `functions.${functionKey} schedule`;
      let rates: unknown;
      let enabled = true;
      let method: DeclaredSchedule['method'] = 'eventBus';
      let timeZone = 'UTC';
      if (typeof schedule === 'string') {
        rates = schedule;
      } else if (isRecord(schedule)) {
        rates = schedule.rate;
        if (schedule.enabled === false || schedule.enabled === 'false') enabled = false;
        if (schedule.method === 'scheduler') method = 'scheduler';
        else if (schedule.method !== undefined && schedule.method !== 'eventBus') {
          throw new ScheduleExpressionError(`${where}: unknown method ${JSON.stringify(schedule.method)}`);
        }
        if (schedule.timezone !== undefined) {
          if (method !== 'scheduler') {
            // EventBridge rules are always UTC; Serverless only honours timezone with the scheduler.
            throw new ScheduleExpressionError(`${where}: timezone needs method: scheduler (EventBridge rules run in UTC)`);
          }
          timeZone = String(schedule.timezone);
        }
      } else {
        throw new ScheduleExpressionError(`${where}: expected an expression or an object with rate`);
      }
      const list = Array.isArray(rates) ? rates : [rates];
      if (list.length === 0 || list.some((r) => typeof r !== 'string')) {
        throw new ScheduleExpressionError(`${where}: rate must be an expression or a list of expressions`);
      }
      for (const rate of list as string[]) {
        schedules.push({
          functionKey,
          functionName: fn?.name,
          job: jobNameOf(functionKey),
          expression: parseScheduleExpression(rate),
          enabled,
          method,
          timeZone,
        });
      }
    }
  }
  return schedules;
}

export interface PlannedRun {
  at: Date;
  /** 'HH:MM' in the day's zone, and that zone's short name then (BST, GMT, UTC, ...). */
  time: string;
  zoneName: string;
  schedule: DeclaredSchedule;
}

export interface DayPlan {
  day: string;
  timeZone: string;
  runs: PlannedRun[];
  /**
   * rate(...) schedules. They count from when the schedule was created (deployment), which the
   * configuration cannot tell, so they are listed as "every N unit" rather than expanded.
   */
  rates: DeclaredSchedule[];
}

export function planDay(schedules: DeclaredSchedule[], day: string, timeZone: string): DayPlan {
  const runs: PlannedRun[] = [];
  const rates: DeclaredSchedule[] = [];
  for (const schedule of schedules) {
    if (schedule.expression.kind === 'rate') {
      rates.push(schedule);
      continue;
    }
    for (const at of cronRunsOnDay(schedule.expression, schedule.timeZone, day, timeZone)) {
      runs.push({ at, ...clockTimeIn(timeZone, at), schedule });
    }
  }
  // Time order; at the same minute, by job so the output is stable.
  runs.sort((a, b) => a.at.getTime() - b.at.getTime() || a.schedule.job.localeCompare(b.schedule.job));
  return { day, timeZone, runs, rates };
}

function describeSource(schedule: DeclaredSchedule): string {
  const where = schedule.method === 'scheduler' ? `EventBridge Scheduler, ${schedule.timeZone}` : 'EventBridge rule, UTC';
  return `${schedule.expression.expression} (${where})`;
}

/** A plain-text table of the day's runs, for people. */
export function formatDayPlan(plan: DayPlan): string {
  const header = ['TIME', 'JOB', 'FUNCTION', 'SCHEDULE', 'NOTE'];
  const rows = plan.runs.map((run) => [
    `${run.time} ${run.zoneName}`,
    run.schedule.job,
    run.schedule.functionKey,
    describeSource(run.schedule),
    run.schedule.enabled ? '' : 'DISABLED (would run at this time if enabled)',
  ]);
  for (const schedule of plan.rates) {
    rows.push([
      describeRate(schedule.expression as Extract<ScheduleExpression, { kind: 'rate' }>),
      schedule.job,
      schedule.functionKey,
      `${describeSource(schedule)}, counted from deployment`,
      schedule.enabled ? '' : 'DISABLED',
    ]);
  }
  const lines = [`Jobs on ${plan.day} (times in ${plan.timeZone})`, ''];
  if (rows.length === 0) {
    lines.push('No scheduled runs on this day.');
    return lines.join('\n');
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) {
    lines.push(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  }
  return lines.join('\n');
}
