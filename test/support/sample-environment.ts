import { seedSampleDatabase } from '../../scripts/sample-database/seed-sample-database';
import { createMigratedTestDatabase } from './database';
import type { TestDatabase } from './database';
import { startTestS3 } from './s3';
import type { TestS3 } from './s3';

/** What the functions run against in a test: a migrated, seeded database of its own and an S3 bucket. */
export interface SampleEnvironment {
  db: TestDatabase;
  s3: TestS3;
  bucket: string;
  /** Stops the S3 server and drops the database. */
  stop(): Promise<void>;
}

export async function startSampleEnvironment(): Promise<SampleEnvironment> {
  const db = await createMigratedTestDatabase();
  try {
    await seedSampleDatabase(db.sql);
    const s3 = await startTestS3();
    const bucket = await s3.createBucket();
    return {
      db,
      s3,
      bucket,
      async stop() {
        await s3.close();
        await db.drop();
      },
    };
  } catch (error) {
    await db.drop();
    throw error;
  }
}
