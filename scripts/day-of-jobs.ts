/**
 * "A day of jobs": every schedule declared in serverless.yml (as `sls print` resolves it),
 * expanded into that day's runs in a chosen time zone, for `npm run schedule`.
 */
import { JOB_NAMES } from '../lib/runs/run';
import type { JobName } from '../lib/runs/run';
import type { DeclaredSchedule } from '../lib/schedule/declared-schedules';
import { cronRunsOnDay, describeRate } from '../lib/schedule/schedule-expression';
import type { ScheduleExpression } from '../lib/schedule/schedule-expression';
import { clockTimeIn } from '../lib/schedule/zoned-time';

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
  /** Jobs with no schedule declared at all: they run only when asked (the restore). */
  onDemand: JobName[];
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
  const onDemand = JOB_NAMES.filter((job) => !schedules.some((schedule) => schedule.job === job));
  return { day, timeZone, runs, rates, onDemand };
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
  } else {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const row of [header, ...rows]) {
      lines.push(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
    }
  }
  if (plan.onDemand.length > 0) {
    lines.push('', `On demand only, no schedule: ${plan.onDemand.map((job) => `${job} (POST /jobs/${job}${job === 'restore' ? ', or an export with {"restore": true}' : ''})`).join('; ')}`);
  }
  return lines.join('\n');
}
