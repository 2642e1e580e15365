import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/offline';
import { projectRoot } from '../support/packaged-template';
import { DEFAULT_EXPORT_SCHEMAS } from '../../lib/config';
import { processesCarrying, waitUntilNoneCarry } from '../support/processes';

/**
 * `npm run local`, as a new user runs it: with no database, S3 or Lambda settings it brings up the
 * embedded PostgreSQL, s3rver and sls offline, prints how to call them; a POST with the printed key
 * runs the export through the real asynchronous path; Ctrl-C stops every process it started.
 */

const localDir = mkdtempSync(join(tmpdir(), 'waj-local-stack-'));
// As the project's own .local is: when the tests run as root, the server runs as the postgres user.
chmodSync(localDir, 0o755);
let stack: ChildProcess;
let output = '';

beforeAll(async () => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['DATABASE_URL', 'S3_ENDPOINT', 'LAMBDA_ENDPOINT', 'JOB_DISPATCH', 'EXPORT_BUCKET', 'OFFLINE_SCHEDULES']) delete env[name];
  Object.assign(env, {
    LOCAL_DIR: localDir, // also the marker by which the test finds every process the command started
    JOBS_API_KEY: `key-${randomBytes(8).toString('hex')}`,
    OFFLINE_HTTP_PORT: String(await freePort()),
    OFFLINE_LAMBDA_PORT: String(await freePort()),
    SLS_TELEMETRY_DISABLED: '1',
  });
  // A process group of its own, as a command typed at a terminal gets: Ctrl-C signals the group.
  stack = spawn('npm', ['run', 'local'], { cwd: projectRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  stack.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  stack.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 240_000;
  while (!/The functions' logs go to \S+/.test(output)) {
    if (stack.exitCode !== null) throw new Error(`npm run local exited with ${stack.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`npm run local did not come up:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}, 300_000);

afterAll(() => {
  // Only if a test failed before its Ctrl-C: stop the group, then whatever it left.
  const kill = (pid: number) => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  if (stack?.exitCode === null && stack.signalCode === null && stack.pid) kill(-stack.pid);
  for (const { pid } of processesCarrying(localDir)) kill(pid);
  rmSync(localDir, { recursive: true, force: true });
});

function printed(label: string): string {
  const match = new RegExp(`^\\s+${label}:\\s+(\\S+)`, 'm').exec(output);
  if (!match) throw new Error(`npm run local printed no "${label}:" line:\n${output}`);
  return match[1]!;
}

describe('npm run local', () => {
  it('prints the API, its key, the dashboard to open in a browser, a curl line for each keyed route and the invoke-local line of each worker', () => {
    const api = printed('API');
    const key = printed('API key');
    expect(api).toBe(`http://127.0.0.1:${new URL(api).port}`);
    for (const route of ['-X POST ' + api + '/jobs/export', '-X POST ' + api + '/jobs/time-limited', '-X POST ' + api + '/jobs/restore', `"${api}/jobs/runs/$RUN_ID"`, `${api}/jobs/export/runs`, `${api}/jobs/restore/runs`]) {
      expect(output).toContain(`${route} -H 'x-api-key: ${key}'`);
    }
    // The dashboard is a page for a browser, which asks for the key: its address, not a keyed curl line.
    expect(printed('Dashboard')).toBe(`${api}/jobs/dashboard`);
    expect(output).not.toContain(`curl -s ${api}/jobs/dashboard`);
    expect(output).toMatch(/DATABASE_URL=postgres:\/\/\S+ RESTORE_DATABASE_URL=postgres:\/\/\S+_reporting EXPORT_BUCKET=\S+ S3_ENDPOINT=http:\/\/127\.0\.0\.1:\d+ npx serverless invoke local -f exportWorker/);
    expect(output).toMatch(/npx serverless invoke local -f timeLimitedWorker/);
    expect(output).toMatch(/npx serverless invoke local -f restoreWorker/);
    // The restore's target: a second database on the same server.
    expect(new URL(printed('Reporting')).pathname).toBe(`${new URL(printed('PostgreSQL')).pathname}_reporting`);
    // Only lines that work as printed: the verifier with an event, not the schema worker (a step event names a run).
    expect(output).toMatch(/npx serverless invoke local -f exportVerifier -p test\/fixtures\/verification\/object-created-event\.json$/m);
    expect(output).not.toMatch(/invoke local -f (export|restore)SchemaWorker/);
    expect(output).toContain(`data in ${join(localDir, 'postgres')}`);
  });

  it('a POST with the printed key answers 204 and its run ends succeeded, through the worker', async () => {
    const api = printed('API');
    const headers = { 'x-api-key': printed('API key') };
    const response = await fetch(`${api}/jobs/export`, { method: 'POST', headers });
    expect(response.status).toBe(204);
    const location = response.headers.get('location');
    expect(location).toMatch(/^\/jobs\/runs\/[0-9a-f-]{36}$/);
    let run: { status: string; trigger: string; steps?: { name: string; status: string }[] } | undefined;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      run = (await (await fetch(`${api}${location}`, { headers })).json()) as typeof run;
      if (run && !['queued', 'running'].includes(run.status)) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(run?.status, JSON.stringify(run)).toBe('succeeded');
    expect(run?.trigger).toBe('http');
    expect(run?.steps?.map((s) => `${s.name} ${s.status}`)).toEqual(DEFAULT_EXPORT_SCHEMAS.map((name) => `${name} succeeded`));
    // The coordinator and each schema's step ran in their workers, invoked through the Lambda API.
    // Their logs are in the file the stack named, not on the terminal.
    const logs = readFileSync(/The functions' logs go to (\S+)/.exec(output)![1]!, 'utf8');
    expect(logs).toMatch(/\(λ: exportWorker\) RequestId/);
    expect(logs).toMatch(/\(λ: exportSchemaWorker\) RequestId/);
    expect(output).not.toMatch(/^\{"level"/m);
    expect(output).not.toContain('NodeVersionSupportWarning');

    // Then the restore of that export into the reporting database the stack printed.
    const restore = await fetch(`${api}/jobs/restore`, { method: 'POST', headers });
    expect(restore.status).toBe(204);
    const restoreLocation = restore.headers.get('location')!;
    let restored: { status: string; error: string | null } | undefined;
    while (Date.now() < deadline + 90_000) {
      restored = (await (await fetch(`${api}${restoreLocation}`, { headers })).json()) as typeof restored;
      if (restored && !['queued', 'running'].includes(restored.status)) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(restored?.status, JSON.stringify(restored)).toBe('succeeded');
    const reporting = postgres(printed('Reporting'), { max: 1, onnotice: () => {} });
    try {
      const schemas = await reporting<{ name: string }[]>`SELECT nspname AS name FROM pg_namespace WHERE nspname = ANY(${[...DEFAULT_EXPORT_SCHEMAS]}::text[]) ORDER BY 1`;
      expect(schemas.map((r) => r.name)).toEqual([...DEFAULT_EXPORT_SCHEMAS].sort());
    } finally {
      await reporting.end();
    }
  }, 240_000);

  it('Ctrl-C (SIGINT to its process group) stops every process it started', async () => {
    expect(processesCarrying(localDir).some(({ command }) => command.includes('bin/postgres'))).toBe(true);
    const exited = new Promise((resolve) => stack.once('exit', resolve));
    process.kill(-stack.pid!, 'SIGINT');
    await exited;
    expect(await waitUntilNoneCarry(localDir, 5_000)).toEqual([]);
  }, 60_000);
});
