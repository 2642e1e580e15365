import { readExportSchemas } from '../config';
import type { Env } from '../config';
import type { JobName } from '../runs/run';
import { readScheduleSettings, summariseSchedule } from '../schedule/next-run';
import type { ScheduleSummary } from '../schedule/next-run';

export interface JobOverview extends Record<string, unknown> {
  /** The job's schedule and its next run in Europe/London; null when the job has none. */
  schedule: ScheduleSummary | null;
  /** The export's (and the restore's) configured schemas, in order: what "all schemas" means. */
  schemas?: string[];
}

/** What each job would do next, from this function's settings (read once, at cold start). */
export function createJobOverview(env: Env): (job: JobName, now?: Date) => JobOverview {
  const schedules = readScheduleSettings(env);
  const schemas = readExportSchemas(env);
  return (job, now = new Date()) => {
    const schedule = schedules.find((s) => s.job === job);
    return {
      schedule: schedule ? summariseSchedule(schedule, now) : null,
      ...(job === 'export' || job === 'restore' ? { schemas } : {}),
    };
  };
}
