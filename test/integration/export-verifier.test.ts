import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeleteObjectCommand, GetObjectTaggingCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { closeDatabase } from '../../lib/clients/database';
import { createS3Client } from '../../lib/clients/s3';
import { holdTestRunSnapshot } from '../support/run-snapshot';
import { exportSchema } from '../../lib/export/export-schema';
import { logger } from '../../lib/logger';
import { createExportVerifierFunction } from '../../lib/verification/export-verifier-function';
import type { VerifierResponse } from '../../lib/verification/export-verifier-function';
import { VERIFICATION_FAILED_MESSAGE } from '../../lib/verification/verify-uploaded-tarball';
import { buildSchemaTarball, flipByteInside, SAMPLE_TABLES } from '../fixtures/verification/build-tarball';
import { freePort } from '../support/offline';
import { startSampleEnvironment } from '../support/sample-environment';
import type { SampleEnvironment } from '../support/sample-environment';

/**
 * exportVerifier's handler, run against a real database (migrated: jobs.runs and jobs.run_steps) and a
 * real S3 server, with the EventBridge "Object Created" event S3 sends.
 */
const eventFixture = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/verification/object-created-event.json'), 'utf8'));

let env: SampleEnvironment;
let handler: (event: unknown) => Promise<VerifierResponse>;
let runId: string;

function objectCreated(key: string, bucket = env.bucket) {
  return { ...eventFixture, resources: [`arn:aws:s3:::${bucket}`], detail: { ...eventFixture.detail, bucket: { name: bucket }, object: { ...eventFixture.detail.object, key } } };
}

async function upload(key: string, body: Buffer, metadata: Record<string, string> = { 'run-id': runId, schema: 'water' }) {
  await env.s3.client.send(new PutObjectCommand({ Bucket: env.bucket, Key: key, Body: body, Metadata: metadata }));
}

async function tagsOf(key: string) {
  const { TagSet } = await env.s3.client.send(new GetObjectTaggingCommand({ Bucket: env.bucket, Key: key }));
  return Object.fromEntries((TagSet ?? []).map((t) => [t.Key, t.Value]));
}

async function verificationOnStep(schema: string) {
  const [step] = await env.db.sql`SELECT verification FROM jobs.run_steps WHERE run_id = ${runId} AND name = ${schema}`;
  return step?.verification;
}

beforeAll(async () => {
  env = await startSampleEnvironment();
  handler = createExportVerifierFunction(
    { DATABASE_URL: env.db.url, EXPORT_BUCKET: env.bucket, EXPORT_PREFIX: 'export/', S3_ENDPOINT: env.s3.endpoint },
    env.s3.client,
  );
}, 120_000);

beforeEach(async () => {
  const [run] = await env.db.sql<{ id: string }[]>`
    INSERT INTO jobs.runs (job, trigger, status, started_at, finished_at) VALUES ('export', 'manual', 'succeeded', now(), now()) RETURNING id`;
  runId = run!.id;
  for (const [position, name] of ['water', 'crm'].entries()) {
    await env.db.sql`INSERT INTO jobs.run_steps (run_id, position, name, status) VALUES (${runId}, ${position}, ${name}, 'succeeded')`;
  }
});

afterAll(async () => {
  await closeDatabase();
  await env?.stop();
});

describe('exportVerifier', () => {
  it('verifies a whole tarball: recorded on the run step for its schema, and tagged verified=true', async () => {
    await upload('export/water.tgz', await buildSchemaTarball('water', SAMPLE_TABLES));
    const before = Date.now();
    const outcome = await handler(objectCreated('export/water.tgz'));
    expect(outcome).toMatchObject({ status: 'verified', problems: [], step: { runId, schema: 'water', outcome: 'recorded' } });
    expect(await tagsOf('export/water.tgz')).toEqual({ verified: 'true' });
    const verification = await verificationOnStep('water');
    expect(verification).toEqual({ status: 'verified', checkedAt: expect.any(String), problems: [] });
    expect(Date.parse(verification.checkedAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(await verificationOnStep('crm')).toBeNull();
  });

  it('verifies a tarball written by the real export', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'waj-verify-export-'));
    const { run, held } = await holdTestRunSnapshot(env.db.sql);
    try {
      await exportSchema('crm', { sql: env.db.sql, s3: env.s3.client, bucket: env.bucket, key: 'export/crm.tgz', folder, run });
    } finally {
      await held.release();
      await rm(folder, { recursive: true, force: true });
    }
    const outcome = await handler(objectCreated('export/crm.tgz'));
    expect(outcome).toMatchObject({ status: 'verified', problems: [] });
    expect(await tagsOf('export/crm.tgz')).toEqual({ verified: 'true' });
  });

  it('fails a tarball with a byte changed: recorded naming the table and sha256, tagged false, logged as an error', async () => {
    const errors = vi.spyOn(logger, 'error');
    try {
      await upload('export/water.tgz', flipByteInside(await buildSchemaTarball('water', SAMPLE_TABLES), 'alcs', 'b'));
      const outcome = await handler(objectCreated('export/water.tgz'));
      expect(outcome).toMatchObject({ status: 'failed', step: { outcome: 'recorded' } });
      expect(await tagsOf('export/water.tgz')).toEqual({ verified: 'false' });
      const verification = await verificationOnStep('water');
      expect(verification.status).toBe('failed');
      expect(verification.problems).toEqual([
        expect.objectContaining({ kind: 'sha256', table: 'charge_versions', file: 'water/charge_versions.csv', expected: expect.any(String), found: expect.any(String) }),
      ]);
      expect(errors).toHaveBeenCalledWith(
        VERIFICATION_FAILED_MESSAGE,
        expect.objectContaining({ key: 'export/water.tgz', runId, schema: 'water', problems: [expect.stringMatching(/^charge_versions \(water\/charge_versions\.csv\): sha256 expected/)] }),
      );
    } finally {
      errors.mockRestore();
    }
  });

  it('fails a truncated object as truncated', async () => {
    const tgz = await buildSchemaTarball('water', SAMPLE_TABLES);
    await upload('export/water.tgz', tgz.subarray(0, tgz.length - 100));
    expect(await handler(objectCreated('export/water.tgz'))).toMatchObject({ status: 'failed', problems: [expect.stringMatching(/^Truncated: /)] });
    expect((await verificationOnStep('water')).problems).toEqual([expect.objectContaining({ kind: 'truncated' })]);
    expect(await tagsOf('export/water.tgz')).toEqual({ verified: 'false' });
  });

  it('fails an object that is not gzip', async () => {
    await upload('export/water.tgz', Buffer.from('water/licences.csv\nnot an archive\n'));
    expect(await handler(objectCreated('export/water.tgz'))).toMatchObject({ status: 'failed', problems: [expect.stringMatching(/^Not a gzip file/)] });
    expect(await verificationOnStep('water')).toMatchObject({ status: 'failed', problems: [{ kind: 'not-gzip' }] });
    expect(await tagsOf('export/water.tgz')).toEqual({ verified: 'false' });
  });

  it('tags a tarball that carries no run id (uploaded by hand) and says it could not record it', async () => {
    await upload('export/water.tgz', await buildSchemaTarball('water', SAMPLE_TABLES), {});
    expect(await handler(objectCreated('export/water.tgz'))).toMatchObject({ status: 'verified', step: { outcome: 'no-run-id' } });
    expect(await tagsOf('export/water.tgz')).toEqual({ verified: 'true' });
    expect(await verificationOnStep('water')).toBeNull();
  });

  it('says so when the run has no step for the schema', async () => {
    await upload('export/idm.tgz', await buildSchemaTarball('idm', SAMPLE_TABLES), { 'run-id': runId, schema: 'idm' });
    expect(await handler(objectCreated('export/idm.tgz'))).toMatchObject({ status: 'verified', step: { runId, schema: 'idm', outcome: 'no-such-step' } });
  });

  it('does nothing for an object deleted before it could be read', async () => {
    await upload('export/permit.tgz', await buildSchemaTarball('permit', SAMPLE_TABLES));
    await env.s3.client.send(new DeleteObjectCommand({ Bucket: env.bucket, Key: 'export/permit.tgz' }));
    expect(await handler(objectCreated('export/permit.tgz'))).toMatchObject({ status: 'gone' });
  });

  it('refuses an object outside the export prefix, another bucket, or an event of another kind', async () => {
    await expect(handler(objectCreated('elsewhere/water.tgz'))).rejects.toThrow(/not an export tarball/);
    await expect(handler(objectCreated('export/water.csv'))).rejects.toThrow(/not an export tarball/);
    await expect(handler(objectCreated('export/water.tgz', 'another-bucket'))).rejects.toThrow(/not an export tarball/);
    await expect(handler({ source: 'aws.s3', 'detail-type': 'Object Deleted', detail: {} })).rejects.toThrow(/Not an S3 "Object Created" event/);
  });

  it('throws when S3 cannot be reached (so Lambda retries), recording nothing', async () => {
    const unreachable = createS3Client({ endpoint: `http://127.0.0.1:${await freePort()}` });
    const cut = createExportVerifierFunction({ DATABASE_URL: env.db.url, EXPORT_BUCKET: env.bucket, EXPORT_PREFIX: 'export/' }, unreachable);
    try {
      await expect(cut(objectCreated('export/water.tgz'))).rejects.toThrow(/ECONNREFUSED|connect/);
    } finally {
      unreachable.destroy();
    }
    expect(await verificationOnStep('water')).toBeNull();
  });

  it('refuses a few hundred malformed events with a clear error, touching nothing', async () => {
    let seed = 14;
    const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const junk = () => pick<unknown>([null, undefined, 0, -1, '', 'x', [], {}, [1], { a: null }, true, ['aws.s3'], ' Object Created']);
    const malformed: (() => unknown)[] = [
      () => junk(),
      () => ({ ...objectCreated('export/water.tgz'), source: pick(['aws.s3x', 'AWS.S3', junk()]) }),
      () => ({ ...objectCreated('export/water.tgz'), 'detail-type': pick(['Object Deleted', 'object created', junk()]) }),
      () => ({ ...objectCreated('export/water.tgz'), detail: pick([junk(), { bucket: junk(), object: { key: 'export/water.tgz' } }, { bucket: { name: env.bucket }, object: junk() }]) }),
      () => objectCreated(pick(['export/', 'export/.tgz.bak', 'exports/water.tgz', '/export/water.tgz', 'export/water.TGZ', 'water.tgz', `export/water.tgz${pick(['\u0000', ' ', '/'])}`])),
      () => objectCreated('export/water.tgz', pick([`${env.bucket}x`, env.bucket.toUpperCase(), 'other'])),
    ];
    const before = await env.db.sql`SELECT count(*)::int AS n FROM jobs.run_steps WHERE verification IS NOT NULL`;
    for (let round = 0; round < 300; round += 1) {
      const event = pick(malformed)();
      await expect(handler(event), JSON.stringify(event)).rejects.toThrow(
        /^(Not an S3 "Object Created" event|The "Object Created" event has no detail|s3:\/\/.* is not an export tarball)/,
      );
    }
    expect(await env.db.sql`SELECT count(*)::int AS n FROM jobs.run_steps WHERE verification IS NOT NULL`).toEqual(before);
  });
});
