import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import S3rver from 's3rver';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../lib/clients/s3';

/** The local database the quick start uses unless DATABASE_URL says otherwise. */
export const DEFAULT_LOCAL_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/water_abstraction_local';

async function canConnect(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Starts this machine's PostgreSQL cluster if it is down (Debian's pg_ctlcluster). */
export async function ensurePostgresRunning(serverUrl: string): Promise<void> {
  if (await canConnect(serverUrl)) return;
  const versions = readdirSync('/etc/postgresql');
  for (const version of versions) {
    execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'inherit' });
  }
  for (let i = 0; i < 30; i += 1) {
    if (await canConnect(serverUrl)) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`PostgreSQL did not come up at ${serverUrl}`);
}

/** Creates the database named in `url` if it does not exist (connecting to `postgres` to do so). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const server = new URL(url);
  server.pathname = '/postgres';
  await ensurePostgresRunning(server.toString());
  const sql = postgres(server.toString(), { max: 1, onnotice: () => {} });
  try {
    const [exists] = await sql`select 1 from pg_database where datname = ${name}`;
    if (!exists) await sql`create database ${sql(name)}`;
  } finally {
    await sql.end();
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
    if ((error as Error).name !== 'BucketAlreadyOwnedByYou' && (error as Error).name !== 'BucketAlreadyExists') throw error;
  } finally {
    client.destroy();
  }
  return { endpoint, directory: join(directory), server, close: () => server.close() };
}
