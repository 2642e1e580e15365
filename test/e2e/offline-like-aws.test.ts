import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { localApiKey, startOffline } from '../support/offline';
import type { Offline } from '../support/offline';

/**
 * Under `sls offline` the functions see what they would see deployed (plugins/offline-like-aws.js):
 * a JSON body that parses to null, false or 0 arrives as its text, as API Gateway passes it, and
 * is refused with 400; schedules do not fire unless OFFLINE_SCHEDULES=true.
 */

let db: TestDatabase;
let offline: Offline;

beforeAll(async () => {
  db = await createMigratedTestDatabase();
  // Nothing listens at the S3 endpoint: no request here may get as far as the worker.
  offline = await startOffline({ DATABASE_URL: db.url, EXPORT_BUCKET: 'any', S3_ENDPOINT: 'http://127.0.0.1:1' });
}, 180_000);

afterAll(async () => {
  await offline?.stop();
  await db?.drop();
});

describe('sls offline answers as AWS would', () => {
  it.each(['null', 'false', '0', ' null '])('POST /jobs/export with the JSON body %j answers 400 and records nothing', async (body) => {
    const response = await fetch(`${offline.httpUrl}/jobs/export`, {
      method: 'POST',
      headers: { 'x-api-key': localApiKey(), 'content-type': 'application/json' },
      body,
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: expect.any(String) });
    const [row] = await db.sql<{ count: number }[]>`SELECT count(*)::int AS count FROM jobs.runs`;
    expect(row!.count).toBe(0);
  });

  it('schedules nothing unless asked', () => {
    expect(offline.output()).toContain('Server ready');
    expect(offline.output()).not.toMatch(/Scheduling \[/);
  });

  it('schedules the enabled schedules with OFFLINE_SCHEDULES=true', async () => {
    const scheduled = await startOffline({ DATABASE_URL: db.url, EXPORT_BUCKET: 'any', S3_ENDPOINT: 'http://127.0.0.1:1', OFFLINE_SCHEDULES: 'true' });
    try {
      expect(scheduled.output()).toMatch(/Scheduling \[timeLimitedWorker\] cron: \[15 20 \* \* \?\]/);
    } finally {
      await scheduled.stop();
    }
  }, 180_000);
});
