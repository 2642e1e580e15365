import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import { logger } from '../lib/logger';

/** The one schema the project owns; the tool's bookkeeping lives in it too, so nothing else is touched. */
export const JOBS_SCHEMA = 'jobs';
export const MIGRATIONS_TABLE = 'pgmigrations';

/**
 * node-pg-migrate's default advisory lock id is shared by every project using the tool; our own
 * id keeps us from waiting on (or blocking) another project's migrations in the same cluster.
 */
export const MIGRATION_LOCK_ID = 6_130_871_245_506_001;

const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

/**
 * Applies every pending migration in `migrations/` to the database. Safe to call concurrently:
 * callers queue on a PostgreSQL advisory lock, and whoever comes second finds nothing to do.
 * All pending migrations go in one transaction, so a failure leaves the schema as it was.
 * Returns the names of the migrations it applied (none when the database was up to date).
 */
export async function migrateDatabase(databaseUrl: string): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    schema: JOBS_SCHEMA,
    createSchema: true,
    migrationsSchema: JOBS_SCHEMA,
    createMigrationsSchema: true,
    migrationsTable: MIGRATIONS_TABLE,
    checkOrder: true,
    singleTransaction: true,
    lockValue: MIGRATION_LOCK_ID,
    // The tool's default ('fail') would make the second of two concurrent callers throw.
    advisoryLockMode: 'wait',
    // Its chatter ("No migrations to run!") is debug detail; warnings and errors stay visible.
    logger: {
      info: (message) => logger.debug(message),
      warn: (message) => logger.warn(message),
      error: (message) => logger.error(message),
    },
  });
  const names = applied.map((m) => m.name);
  if (names.length > 0) logger.info('Database migrated', { migrations: names });
  return names;
}
