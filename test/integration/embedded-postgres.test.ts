import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { EMBEDDED_POSTGRES_MAJOR, startEmbeddedPostgres as startServer } from '../../scripts/local/embedded-postgres';
import { startEmbeddedPostgres } from '../support/embedded-postgres';
import { projectRoot } from '../support/packaged-template';
import { processesCarrying, waitUntilNoneCarry } from '../support/processes';

/**
 * The embedded PostgreSQL server (scripts/local/embedded-postgres.ts) is a real server, and every
 * server started is stopped: by stop(), and also when the process that started it exits without
 * stopping it, dies of an error or is killed outright. "Left behind" is checked on every process
 * that carries the run's unique marker in its environment, postgres' backends included.
 */

const scratch = mkdtempSync(join(tmpdir(), 'waj-embedded-pg-test-'));
chmodSync(scratch, 0o755); // run as root, the server runs as the postgres user, which must reach it

afterAll(() => {
  for (const { pid } of processesCarrying(scratch)) process.kill(pid, 'SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

async function query<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

describe('embedded PostgreSQL', () => {
  it(`is PostgreSQL ${EMBEDDED_POSTGRES_MAJOR} on 127.0.0.1, survives a restart on the same port, and is gone after stop()`, async () => {
    const server = await startEmbeddedPostgres();
    try {
      const [row] = await query(server.adminUrl, (sql) => sql<{ version: string }[]>`select version()`);
      expect(row!.version).toMatch(new RegExp(`^PostgreSQL ${EMBEDDED_POSTGRES_MAJOR}\\.`));
      expect(new URL(server.adminUrl).hostname).toBe('127.0.0.1');

      const startedAt = () => query(server.adminUrl, (sql) => sql<{ at: Date }[]>`select pg_postmaster_start_time() as at`);
      const [before] = await startedAt();
      await query(server.adminUrl, (sql) => sql`create table kept (n int)`);
      await server.restart();
      const [after] = await startedAt();
      expect(after!.at.getTime()).toBeGreaterThan(before!.at.getTime()); // a new postmaster, same port
      const [count] = await query(server.adminUrl, (sql) => sql<{ n: number }[]>`select count(*)::int as n from kept`);
      expect(count!.n).toBe(0);
    } finally {
      await server.stop();
    }
    await expect(query(server.adminUrl, (sql) => sql`select 1`)).rejects.toThrow();
  });

  it('keeps a durable cluster for the next start, and refuses a folder whose server another live process runs', async () => {
    const dataDir = join(scratch, 'durable');
    const first = await startServer({ dataDir });
    try {
      await query(first.adminUrl, (sql) => sql`create database kept_between_runs`);
      await expect(startServer({ dataDir })).rejects.toThrow(`is in use by process ${process.pid}`);
      await query(first.adminUrl, (sql) => sql`select 1`); // and the running one was left alone
    } catch (error) {
      await first.stop();
      throw error;
    }
    await first.stop();
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
    const second = await startServer({ dataDir });
    try {
      const names = await query(second.adminUrl, (sql) => sql<{ datname: string }[]>`select datname from pg_database`);
      expect(names.map((n) => n.datname)).toContain('kept_between_runs');
    } finally {
      await second.stop();
    }
  });

  it.each(['exit', 'throw', 'hold'])('leaves no process when its owner ends by %s (hold: SIGKILL)', async (mode) => {
    const dataDir = join(scratch, `owner-${mode}`);
    const { owner, port, exited } = await startOwner(dataDir, mode);
    if (mode === 'hold') {
      expect(processesCarrying(dataDir).some(({ command }) => command.includes('bin/postgres'))).toBe(true);
      owner.kill('SIGKILL');
    }
    await exited;

    expect(await waitUntilNoneCarry(dataDir, 15_000)).toEqual([]);
    await expect(query(`postgres://postgres@127.0.0.1:${port}/postgres`, (sql) => sql`select 1`)).rejects.toThrow();
    if (mode === 'hold') expect(existsSync(dataDir)).toBe(false); // the watchdog removed the throw-away cluster
  }, 60_000);

  it('stops, at the next start on its folder, a server whose owner and watchdog were both killed', async () => {
    const dataDir = join(scratch, 'orphaned');
    const { owner, port, exited } = await startOwner(dataDir, 'hold');
    for (const { pid, command } of processesCarrying(dataDir)) if (command.includes('node -e')) process.kill(pid, 'SIGKILL');
    owner.kill('SIGKILL');
    await exited;
    await query(`postgres://postgres@127.0.0.1:${port}/postgres`, (sql) => sql`select 1`); // orphaned, still up

    const next = await startServer({ dataDir, durable: false });
    await next.stop();
    expect(await waitUntilNoneCarry(dataDir, 5_000)).toEqual([]);
  }, 60_000);
});

async function startOwner(dataDir: string, mode: string) {
  const owner = spawn(process.execPath, ['--import', 'tsx', 'test/support/hold-embedded-postgres.ts', dataDir, mode], {
      cwd: projectRoot,
      env: { ...process.env, WAJ_EMBEDDED_PG_TEST: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    owner.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    owner.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise((resolve) => owner.once('exit', resolve));
    const deadline = Date.now() + 30_000;
    while (!output.includes('"port"') && owner.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (!output.includes('"port"')) throw new Error(`The owner process did not start its server:\n${output}`);
    const { port } = JSON.parse(output.slice(output.indexOf('{'), output.indexOf('}') + 1)) as { port: number };
    return { owner, port, exited };
}
