import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { startOffline } from '../support/offline';
import type { Offline } from '../support/offline';

/**
 * `sls offline` enforces the API key as API Gateway does: a request without the right x-api-key
 * is refused with 403 before any Lambda runs; with it, the request reaches the function.
 */

const apiKey = `test-key-${randomBytes(12).toString('hex')}`;
let db: TestDatabase;
let offline: Offline;

beforeAll(async () => {
  db = await createMigratedTestDatabase();
  offline = await startOffline({
    JOBS_API_KEY: apiKey,
    DATABASE_URL: db.url,
    EXPORT_BUCKET: 'any',
    // Nothing listens there: the worker's upload fails, which this test does not look at.
    S3_ENDPOINT: 'http://127.0.0.1:1',
  });
}, 180_000);

afterAll(async () => {
  await offline?.stop();
  await db?.drop();
});

const ROUTES = [
  ['POST', '/jobs/export'],
  ['POST', '/jobs/time-limited'],
  ['GET', '/jobs/runs/00000000-0000-4000-8000-000000000000'],
  ['GET', '/jobs/export/runs'],
] as const;

/** Lines serverless-offline prints when a function actually runs (one per invocation). */
function invocations(output: string): string[] {
  return output.split('\n').filter((line) => /\(λ: \w+\) RequestId: /.test(line));
}

async function runCount(): Promise<number> {
  const [row] = await db.sql<{ count: number }[]>`SELECT count(*)::int AS count FROM jobs.runs`;
  return row!.count;
}

describe('sls offline: API key on every /jobs route', () => {
  it.each([
    ['no x-api-key', {}],
    ['a wrong x-api-key', { 'x-api-key': `${apiKey}-wrong` }],
    ['an empty x-api-key', { 'x-api-key': '' }],
    ['the key in another header', { authorization: apiKey }],
  ])('refuses a request with %s with 403, and no function runs', async (_, headers: Record<string, string>) => {
    const before = offline.output();
    for (const [method, path] of ROUTES) {
      const response = await fetch(`${offline.httpUrl}${path}`, { method, headers });
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(await response.json()).toEqual({ message: 'Forbidden' });
    }
    expect(invocations(offline.output().slice(before.length))).toEqual([]);
    expect(await runCount()).toBe(0);
  });

  it('lets the request with the right key through to the function', async () => {
    const before = offline.output();
    const response = await fetch(`${offline.httpUrl}/jobs/export`, { method: 'POST', headers: { 'x-api-key': apiKey } });
    expect(response.status, offline.output().slice(before.length)).toBe(204);
    expect(response.headers.get('location')).toMatch(/^\/jobs\/runs\/[0-9a-f-]{36}$/);
    expect(invocations(offline.output().slice(before.length)).some((line) => line.includes('(λ: exportApi)'))).toBe(true);
    expect(await runCount()).toBe(1);

    const read = await fetch(`${offline.httpUrl}${response.headers.get('location')!}`, { headers: { 'x-api-key': apiKey } });
    expect(read.status).toBe(200);
  });
});
