import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres as startServer } from '../../scripts/local/embedded-postgres';

export interface EmbeddedPostgres {
  /** Superuser connection string to the server's `postgres` database. */
  adminUrl: string;
  port: number;
  /** The cluster's data folder (owned by the user the server runs as). */
  dataDir: string;
  /** Stops the server and starts it again on the same port with the same data. */
  restart(): Promise<void>;
  /** Stops the server; a data folder made here is removed. */
  stop(): Promise<void>;
}

/**
 * A private PostgreSQL server (embedded-postgres's binaries) on 127.0.0.1: a throw-away cluster in a
 * new temporary folder on a free port unless told otherwise. Stop it when done; if the test process
 * ends first, an exit hook still shuts it down.
 */
export async function startEmbeddedPostgres(options: { port?: number; dataDir?: string } = {}): Promise<EmbeddedPostgres> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'waj-test-pg-'));
  const server = await startServer({ dataDir, port: options.port, durable: false, removeDataDirOnStop: options.dataDir === undefined });
  return { adminUrl: server.adminUrl, port: server.port, dataDir: server.dataDir, restart: server.restart, stop: server.stop };
}
