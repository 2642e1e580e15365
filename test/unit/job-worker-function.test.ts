import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Context } from 'aws-lambda';
import type { Job } from '../../lib/jobs/job';
import { createJobWorkerFunction } from '../../lib/jobs/job-functions';
import { parseExportParams } from '../../lib/jobs/export-request';
import { WorkerEventError } from '../../lib/jobs/worker-event';

// A deployed worker's settings, with SSM pointed at a closed local port: every SSM read fails fast.
beforeEach(() => {
  vi.stubEnv('AWS_REGION', 'eu-west-2');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  vi.stubEnv('AWS_ENDPOINT_URL', 'http://127.0.0.1:1');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

const job: Job = {
  name: 'export',
  parseParams: (input) => parseExportParams(input, ['water', 'crm']),
  run: async () => {
    throw new Error('must not run');
  },
};
const context = { awsRequestId: 'req-1', getRemainingTimeInMillis: () => 60_000 } as Context;
const worker = () => createJobWorkerFunction(job, { DATABASE_URL_PARAMETER: '/wrls/database-url' });

describe('a worker function', () => {
  it('refuses a malformed event before reading any setting from SSM or connecting', async () => {
    await expect(worker()({ runId: 'not-a-uuid' }, context)).rejects.toThrow(WorkerEventError);
    const error: unknown = await worker()({ schemas: ['nope'] }, context).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkerEventError);
    expect((error as Error).message).toMatch(/"schemas" names "nope"/);
  });

  it('names the SSM parameter and the local fix when the database setting cannot be read', async () => {
    await expect(worker()({ schemas: ['crm'] }, context)).rejects.toThrow(
      /Could not read the database connection string from the SSM parameter \/wrls\/database-url \(DATABASE_URL_PARAMETER\): .*For local use, set DATABASE_URL instead\./,
    );
  }, 20_000);
});
