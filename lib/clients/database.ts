import postgres from 'postgres';
import type { Sql } from 'postgres';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { DatabaseSettings } from '../config';
import { logger } from '../logger';

/**
 * Connections per Lambda container: a worker holds one for the job's transaction and needs
 * another for the run ledger's progress writes meanwhile.
 */
const MAX_CONNECTIONS = 3;

export function connectDatabase(url: string): Sql {
  return postgres(url, {
    max: MAX_CONNECTIONS,
    connect_timeout: 10,
    // A frozen Lambda container should not hold idle connections for long.
    idle_timeout: 60,
    onnotice: (notice) => logger.debug('PostgreSQL notice', { notice: notice.message }),
  });
}

/** Reads the connection string from SSM Parameter Store (SecureString, decrypted). */
export async function readDatabaseUrlParameter(name: string, ssm: SSMClient = new SSMClient({})): Promise<string> {
  const { Parameter } = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
  if (!Parameter?.Value) throw new Error(`SSM parameter ${name} has no value`);
  return Parameter.Value;
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
