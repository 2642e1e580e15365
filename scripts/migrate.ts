/**
 * `npm run migrate`: applies pending migrations to the database named by DATABASE_URL.
 * The same settings as the tests and the local run, because all of them go through migrateDatabase.
 */
import { logger } from '../lib/logger';
import { migrateDatabase } from './migrate-database';

const databaseUrl = process.env.DATABASE_URL?.trim();
if (!databaseUrl) {
  logger.error('DATABASE_URL is not set: set it to the connection string of the database to migrate, e.g. postgres://user:password@host:5432/dbname');
  process.exitCode = 1;
} else {
  try {
    // migrateDatabase says what it applied; only when it applied nothing is there more to tell.
    const applied = await migrateDatabase(databaseUrl);
    if (applied.length === 0) logger.info('No migrations to apply: the database is up to date');
  } catch (error) {
    logger.error('Migration failed', { error: error as Error });
    process.exitCode = 1;
  }
}
