import { availableParallelism } from 'node:os';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { DatabaseSettings } from '../config';
import { logger } from '../logger';
import { databaseSocketFactory, readTlsSettings } from './database-socket';

/**
 * Connections per Lambda container: the export reads one table per CPU at once, each on a
 * connection of its own (exportSchema never takes more than the pool's size less one), and the
 * run ledger's progress writes need one meanwhile. At least 3, as before the export went
 * parallel; 7 on the 6 vCPUs of a 10 GB Lambda. Opened on demand, so idle ones cost nothing.
 */
const MAX_CONNECTIONS = Math.max(3, availableParallelism() + 1);

export interface ConnectOptions {
  /** Most connections open at once (default: the CPUs + 1, at least 3). */
  max?: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeout?: number;
}

/**
 * The project's one way to open a postgres.js client: its connections are opened by
 * databaseSocketFactory (TLS as the connection string's sslmode says), which lets the export
 * take COPY rows off the wire itself (see CopyDataTap). One host only: postgres.js tries a list
 * of hosts only on sockets it opens itself.
 */
export function connectDatabase(url: string, { max = MAX_CONNECTIONS, connectTimeout = 10 }: ConnectOptions = {}): Sql {
  const tlsSettings = readTlsSettings(url);
  const { hostname } = new URL(url);
  if (hostname.includes(',')) throw new Error('The database connection string names more than one host; give one');
  const socket = databaseSocketFactory(tlsSettings);
  const options = {
    max,
    connect_timeout: connectTimeout,
    // A frozen Lambda container should not hold idle connections for long.
    idle_timeout: 60,
    onnotice: (notice: postgres.Notice) => logger.debug('PostgreSQL notice', { notice: notice.message }),
    // TLS is done by the socket factory; postgres.js would otherwise do it again on top.
    ssl: false,
    socket,
  };
  // `socket` is a postgres.js option its type declarations leave out.
  return postgres(url, options as postgres.Options<Record<string, never>>);
}

/**
 * Reads the connection string from SSM Parameter Store (SecureString, decrypted). A failure names
 * the parameter and the settings involved: locally it usually means DATABASE_URL is not set.
 */
export async function readDatabaseUrlParameter(
  name: string,
  ssm?: Pick<SSMClient, 'send'>,
  settings: { parameter: string; url: string } = { parameter: 'DATABASE_URL_PARAMETER', url: 'DATABASE_URL' },
): Promise<string> {
  let value: string | undefined;
  try {
    // Loaded only here: with DATABASE_URL set (locally) no function loads the SSM client at all.
    const { GetParameterCommand, SSMClient } = await import('@aws-sdk/client-ssm');
    ssm ??= new SSMClient({});
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    value = Parameter?.Value;
  } catch (error) {
    throw new Error(
      `Could not read the database connection string from the SSM parameter ${name} (${settings.parameter}): ${(error as Error).message}. For local use, set ${settings.url} instead.`,
      { cause: error },
    );
  }
  if (!value) throw new Error(`The SSM parameter ${name} (${settings.parameter}) has no value`);
  return value;
}

let cached: Promise<Sql> | undefined;

/**
 * The container's one database client, resolved once (the SSM read happens on the first call of
 * a cold container and is cached for its life). A failed resolution is not cached, so the next
 * invocation tries again.
 */
export function getDatabase(settings: DatabaseSettings): Promise<Sql> {
  cached ??= (async () => connectDatabase(settings.url ?? (await readDatabaseUrlParameter(settings.urlParameter!))))();
  cached.catch(() => {
    cached = undefined;
  });
  return cached;
}

/**
 * Ends the container's database client, if one was opened. Only for a process that runs one
 * invocation and must then exit (`serverless invoke local`): open connections would keep it alive.
 */
export async function closeDatabase(): Promise<void> {
  const current = cached;
  cached = undefined;
  if (current) await (await current.catch(() => undefined))?.end({ timeout: 5 });
}
