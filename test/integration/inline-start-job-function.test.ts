import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { closeDatabase } from '../../lib/clients/database';
import { ConfigError } from '../../lib/config';
import { createInlineStartJobFunction } from '../../lib/jobs/job-functions';
import { createStartJobFunction } from '../../lib/jobs/start-job-function';
import { createTimeLimitedJob } from '../../lib/jobs/time-limited-job';
import { timeLimitedRequest } from '../../lib/jobs/time-limited-request';
import { seedSampleDatabase } from '../../scripts/sample-database/seed-sample-database';
import { createMigratedTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';

/**
 * Inline hand-over is local and test wiring: createInlineStartJobFunction runs the worker in this
 * process and answers when the run has ended; the deployed API function (createStartJobFunction,
 * which knows only the job's request side) refuses JOB_DISPATCH=inline at cold start.
 */

let db: TestDatabase;

beforeAll(async () => {
  db = await createMigratedTestDatabase();
  await seedSampleDatabase(db.sql);
});

afterAll(async () => {
  await closeDatabase();
  await db?.drop();
});

const post = { httpMethod: 'POST', body: null, isBase64Encoded: false, headers: {} } as unknown as APIGatewayProxyEvent;

describe('inline hand-over (local and test wiring)', () => {
  it('runs the worker in-process: 204 once the run has succeeded', async () => {
    const start = createInlineStartJobFunction(createTimeLimitedJob({ days: 50, timeZone: 'Europe/London' }), { DATABASE_URL: db.url });
    const response = await start(post);
    expect(response.statusCode).toBe(204);
    expect(await db.sql`select job, status from jobs.runs`).toEqual([{ job: 'time-limited', status: 'succeeded' }]);
  });

  it('is refused by the API function, whose bundle holds no worker', () => {
    expect(() => createStartJobFunction(timeLimitedRequest, { DATABASE_URL: db.url, JOB_DISPATCH: 'inline' }, 'TIME_LIMITED_WORKER_FUNCTION')).toThrow(
      ConfigError,
    );
  });
});
