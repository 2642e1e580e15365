import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../support/packaged-template';

/**
 * `sls invoke local` ends as soon as the function has: with an invalid setting it prints the error
 * and exits non-zero (it used to hang, kept alive by the bundler's service process), and no run
 * leaves its bundle folder under .esbuild/ (each used to leave 4-7 MB).
 */

interface Ended {
  code: number | null;
  output: string;
  ms: number;
}

function invokeLocal(fn: string, env: Record<string, string>): Promise<Ended> {
  const started = Date.now();
  const child = spawn(process.execPath, ['node_modules/serverless/bin/serverless.js', 'invoke', 'local', '--function', fn], {
    cwd: projectRoot,
    env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // A hang is what is being tested: give up (and fail) long before the test's own timeout.
  const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - started });
    }),
  );
}

/** The bundle folders a run's output names (in stack traces and load errors). */
function bundleFolders(output: string): string[] {
  return [...new Set([...output.matchAll(/(\/[^\s"'()]*\/\.esbuild\/[^/\s]+)\//g)].map((m) => m[1]!))];
}

const NOWHERE = 'postgres://nobody@127.0.0.1:1/none';

describe('sls invoke local ends and tidies up', () => {
  it.each([
    ['timeLimitedWorker', { TIME_LIMITED_DAYS: 'abc' }, /TIME_LIMITED_DAYS must be a whole number of days/],
    ['timeLimitedWorker', { JOBS_TIME_ZONE: 'Mars/Base' }, /JOBS_TIME_ZONE/],
    ['exportWorker', { EXPORT_PREFIX: 'foo' }, /EXPORT_PREFIX/],
  ])('%s with %j exits non-zero within seconds, naming the setting, and leaves no bundle', async (fn, settings, message) => {
    const ended = await invokeLocal(fn, { DATABASE_URL: NOWHERE, EXPORT_BUCKET: 'any', ...settings });
    expect(ended.code, ended.output).not.toBe(0);
    expect(ended.code).not.toBeNull(); // null: killed by the 45 s guard, i.e. it hung
    expect(ended.ms).toBeLessThan(30_000);
    expect(ended.output).toMatch(message);
    const folders = bundleFolders(ended.output);
    expect(folders.length, ended.output).toBeGreaterThan(0);
    for (const folder of folders) expect(existsSync(folder), folder).toBe(false);
  });

  it('the bundle of a run killed outright is removed by the next run', async () => {
    const killed = spawn(process.execPath, ['node_modules/serverless/bin/serverless.js', 'invoke', 'local', '--function', 'timeLimitedWorker'], {
      cwd: projectRoot,
      env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', DATABASE_URL: NOWHERE },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => killed.once('exit', resolve));
    const bundles = join(projectRoot, '.esbuild');
    const ownedByKilled = () =>
      (existsSync(bundles) ? readdirSync(bundles) : []).find((name) => {
        try {
          return readFileSync(join(bundles, name, 'owner.pid'), 'utf8') === String(killed.pid);
        } catch {
          return false;
        }
      });
    let folder: string | undefined;
    const deadline = Date.now() + 30_000;
    while (!(folder = ownedByKilled()) && killed.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(folder, 'the run made its bundle folder').toBeDefined();
    killed.kill('SIGKILL');
    await exited;
    expect(existsSync(join(bundles, folder!))).toBe(true); // no exit hook ran

    const next = await invokeLocal('timeLimitedWorker', { DATABASE_URL: NOWHERE });
    expect(next.code).toBe(1);
    expect(existsSync(join(bundles, folder!))).toBe(false);
  });

  it('a function that loads and then fails leaves no bundle either', async () => {
    const ended = await invokeLocal('timeLimitedWorker', { DATABASE_URL: NOWHERE });
    expect(ended.code, ended.output).toBe(1);
    const folders = bundleFolders(ended.output);
    expect(folders.length, ended.output).toBeGreaterThan(0);
    for (const folder of folders) expect(existsSync(folder), folder).toBe(false);
  });
});
