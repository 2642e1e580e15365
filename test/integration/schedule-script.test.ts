/** Runs `npm run schedule`'s script against the real serverless.yml (through `sls print`). */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

function schedule(...args: string[]) {
  const result = spawnSync(resolve(root, 'node_modules/.bin/tsx'), ['scripts/schedule.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, TZ: 'America/New_York' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('npm run schedule against serverless.yml', () => {
  it('prints the day of jobs in time order, in the zone asked for', () => {
    const summer = schedule('--date', '2026-07-15', '--tz', 'UTC');
    expect(summer.stderr).not.toMatch(/npm run schedule:/);
    expect(summer.status).toBe(0);
    const lines = summer.stdout.trim().split('\n');
    expect(lines[0]).toBe('Jobs on 2026-07-15 (times in UTC)');
    expect(lines.slice(3)).toEqual([
      expect.stringMatching(/^03:00 UTC\s+export\s+exportWorker\s+cron\(0 3 \* \* \? \*\) \(EventBridge rule, UTC\)\s+DISABLED/),
      expect.stringMatching(/^19:15 UTC\s+time-limited\s+timeLimitedWorker\s+cron\(15 20 \* \* \? \*\) \(EventBridge Scheduler, Europe\/London\)$/),
      '',
      'On demand only, no schedule: restore (POST /jobs/restore, or an export with {"restore": true})',
    ]);

    const winter = schedule('--date', '2026-01-15', '--tz', 'Europe/London');
    expect(winter.status).toBe(0);
    expect(winter.stdout).toMatch(/^20:15 GMT\s+time-limited/m);
    expect(winter.stdout).toMatch(/^03:00 GMT\s+export/m);
  }, 30_000);

  it('rejects a bad date or zone with a clear message', () => {
    const badDate = schedule('--date', '2026-02-30');
    expect(badDate.status).toBe(1);
    expect(badDate.stderr).toContain('--date must be a real date as YYYY-MM-DD');
    const badZone = schedule('--tz', 'Europe/Londres');
    expect(badZone.status).toBe(1);
    expect(badZone.stderr).toContain('Unknown time zone: "Europe/Londres"');
  }, 30_000);
});
