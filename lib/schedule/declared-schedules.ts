/**
 * The schedules declared in serverless.yml, read from the resolved configuration (`sls print`) or
 * from the same fields given to a function's environment (next-run.ts).
 */
import { parseScheduleExpression, ScheduleExpressionError } from './schedule-expression';
import type { ScheduleExpression } from './schedule-expression';

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
