/**
 * vitest globalSetup: one PostgreSQL server for the whole test run, unless TEST_DATABASE_ADMIN_URL
 * names one. The embedded server's address goes to the test files (each makes its own databases on
 * it, see database.ts) through TEST_DATABASE_ADMIN_URL, which the worker processes inherit.
 */
import { startEmbeddedPostgres } from './embedded-postgres';

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.TEST_DATABASE_ADMIN_URL) {
    console.log(`Tests use the PostgreSQL server at TEST_DATABASE_ADMIN_URL (${redact(process.env.TEST_DATABASE_ADMIN_URL)})`);
    return undefined;
  }
  const started = Date.now();
  const server = await startEmbeddedPostgres();
  process.env.TEST_DATABASE_ADMIN_URL = server.adminUrl;
  console.log(`Tests use an embedded PostgreSQL server on port ${server.port} (started in ${Date.now() - started} ms)`);
  return async () => {
    delete process.env.TEST_DATABASE_ADMIN_URL;
    await server.stop();
  };
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
