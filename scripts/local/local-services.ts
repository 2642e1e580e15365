import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import S3rver from 's3rver';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../lib/clients/s3';
import { serverUserCanEnter, startEmbeddedPostgres } from './embedded-postgres';

export const projectRoot = resolve(import.meta.dirname, '../..');

/** The database the local commands create and seed on the server. */
export const LOCAL_DATABASE_NAME = 'water_abstraction_local';

/** Where the local commands keep their state between runs: LOCAL_DIR, default .local (git-ignored). */
export function localStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(projectRoot, env.LOCAL_DIR?.trim() || '.local');
}

export interface LocalDatabase {
  url: string;
  /** true: the embedded server under .local/postgres, started by this process. */
  embedded: boolean;
  stop(): Promise<void>;
}

/**
 * The database the local commands use: DATABASE_URL when set (created if missing), else
 * `water_abstraction_local` on the embedded PostgreSQL server whose data lives in
 * <LOCAL_DIR>/postgres (kept between runs), started here on LOCAL_POSTGRES_PORT or a free port.
 */
export async function startLocalDatabase(env: NodeJS.ProcessEnv = process.env, log: (line: string) => void = console.log): Promise<LocalDatabase> {
  const configured = env.DATABASE_URL?.trim();
  if (configured) {
    await ensureDatabase(configured);
    return { url: configured, embedded: false, stop: async () => {} };
  }
  const port = env.LOCAL_POSTGRES_PORT?.trim() ? Number(env.LOCAL_POSTGRES_PORT) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new Error(`LOCAL_POSTGRES_PORT must be a port number, not "${env.LOCAL_POSTGRES_PORT}"`);
  }
  const stateDir = localStateDir(env);
  mkdirSync(stateDir, { recursive: true });
  let dataDir = join(stateDir, 'postgres');
  if (!serverUserCanEnter(stateDir)) {
    // Run as root, the server runs as `postgres`, which cannot enter a project inside a folder only
    // root may enter (/root, a `mktemp -d` folder): its data then lives in the temp folder instead,
    // one folder per project, still kept between runs.
    const key = createHash('sha256').update(stateDir).digest('hex').slice(0, 12);
    dataDir = join(tmpdir(), `waj-local-postgres-${key}`);
    log(`The "postgres" user cannot enter ${stateDir}, so the embedded server keeps its data in ${dataDir}`);
  }
  const started = Date.now();
  const server = await startEmbeddedPostgres({ dataDir, port });
  try {
    const url = new URL(server.adminUrl);
    url.pathname = `/${LOCAL_DATABASE_NAME}`;
    await ensureDatabase(url.toString());
    log(`Embedded PostgreSQL on port ${server.port}, data in ${dataDir} (up in ${Date.now() - started} ms)`);
    return { url: url.toString(), embedded: true, stop: server.stop };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** Creates the database named in `url` if it does not exist (connecting to `postgres` to do so). */
export async function ensureDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const server = new URL(url);
  server.pathname = '/postgres';
  const sql = postgres(server.toString(), { max: 1, connect_timeout: 10, onnotice: () => {} });
  try {
    const [exists] = await sql`select 1 from pg_database where datname = ${name}`;
    if (!exists) await sql`create database ${sql(name)}`;
  } catch (error) {
    throw new Error(`Could not reach PostgreSQL at ${server.host} to create or find the database ${name}: ${(error as Error).message}`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

export interface LocalS3 {
  endpoint: string;
  directory: string;
  /** The server itself, for its S3 event notifications ('event'). */
  server: S3rver;
  close(): Promise<void>;
}

/** A local S3-protocol server (s3rver) keeping its objects under `directory`, with `bucket` created. */
export async function startLocalS3(directory: string, bucket: string, port = 0): Promise<LocalS3> {
  const server = new S3rver({ port, address: '127.0.0.1', silent: true, directory });
  const { port: boundPort } = await server.run();
  const endpoint = `http://127.0.0.1:${boundPort}`;
  const client = createS3Client({ endpoint });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if ((error as Error).name !== 'BucketAlreadyOwnedByYou' && (error as Error).name !== 'BucketAlreadyExists') {
      await server.close();
      throw error;
    }
  } finally {
    client.destroy();
  }
  return { endpoint, directory: join(directory), server, close: () => server.close() };
}

/**
 * Runs the project's `serverless` (osls) with node directly, not through npx: one process to stop,
 * in a process group of its own when `detached` so that stopping it stops its children too.
 */
export function spawnServerless(args: string[], options: SpawnOptions): ChildProcess {
  return spawn(process.execPath, [join(projectRoot, 'node_modules/serverless/bin/serverless.js'), ...args], {
    cwd: projectRoot,
    ...options,
    env: { SLS_TELEMETRY_DISABLED: '1', ...options.env },
  });
}

type Cleanup = () => Promise<void>;
const cleanups: Cleanup[] = [];
let shuttingDown: Promise<void> | undefined;

/** Registers something to stop on shutdown; the last registered stops first. */
export function onShutdown(cleanup: Cleanup): void {
  cleanups.unshift(cleanup);
}

export function isShuttingDown(): boolean {
  return shuttingDown !== undefined;
}

/** Stops everything registered, once, each even if an earlier one failed. */
export function shutdown(): Promise<void> {
  shuttingDown ??= (async () => {
    for (const cleanup of cleanups.splice(0)) {
      try {
        await cleanup();
      } catch (error) {
        console.error(`While stopping: ${(error as Error).message}`);
      }
    }
  })();
  return shuttingDown;
}

/** On Ctrl-C (SIGINT), SIGTERM or SIGHUP: stop everything registered, then exit as the signal would. */
export function shutdownOnSignals(): void {
  const codes: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
  for (const [signal, code] of Object.entries(codes) as [NodeJS.Signals, number][]) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping what this command started...`);
      void shutdown().finally(() => process.exit(code));
    });
  }
}
