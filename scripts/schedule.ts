/**
 * `npm run schedule -- [--date YYYY-MM-DD] [--tz ZONE] [--stage STAGE]`: every job's scheduled
 * runs on one day, in time order, read from serverless.yml as the Serverless Framework resolves it
 * (`sls print`), so it shows what would be deployed.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readSchedules } from '../lib/schedule/declared-schedules';
import type { ResolvedServerlessConfig } from '../lib/schedule/declared-schedules';
import { assertTimeZone } from '../lib/schedule/zoned-time';
import { addDays, calendarDateIn } from '../lib/calendar-date';
import { formatDayPlan, planDay } from './day-of-jobs';

const root = resolve(import.meta.dirname, '..');

function readResolvedConfig(stage: string | undefined): ResolvedServerlessConfig {
  const args = ['print', '--format', 'json', ...(stage ? ['--stage', stage] : [])];
  const result = spawnSync(resolve(root, 'node_modules/.bin/serverless'), args, { cwd: root, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`serverless print failed (${result.status ?? result.signal}):\n${result.stderr || result.stdout}`);
  }
  const json = result.stdout.slice(result.stdout.indexOf('{'));
  return JSON.parse(json) as ResolvedServerlessConfig;
}

function main(): void {
  const { values } = parseArgs({
    options: { date: { type: 'string' }, tz: { type: 'string' }, stage: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log('Usage: npm run schedule -- [--date YYYY-MM-DD] [--tz Europe/London] [--stage dev]');
    return;
  }
  const timeZone = values.tz ?? 'Europe/London';
  assertTimeZone(timeZone);
  const day = values.date ?? calendarDateIn(timeZone, new Date());
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || addDays(day, 0) !== day) {
    throw new RangeError(`--date must be a real date as YYYY-MM-DD: ${JSON.stringify(day)}`);
  }
  const schedules = readSchedules(readResolvedConfig(values.stage));
  console.log(formatDayPlan(planDay(schedules, day, timeZone)));
}

try {
  main();
} catch (error) {
  console.error(`npm run schedule: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
