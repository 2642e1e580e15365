import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, GetObjectTaggingCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { buildSchemaTarball, flipByteInside, SAMPLE_TABLES } from '../fixtures/verification/build-tarball';
import { localApiKey, startOffline, verifyUploadsThroughOffline } from '../support/offline';
import type { Offline } from '../support/offline';
import { projectRoot } from '../support/packaged-template';
import { waitFor as waitUntil } from '../support/wait-for';
import { startSampleEnvironment } from '../support/sample-environment';
import type { SampleEnvironment } from '../support/sample-environment';
import { DEFAULT_EXPORT_SCHEMAS } from '../../lib/config';
import type { UploadForwarding } from '../../scripts/local/forward-uploads-to-verifier';

const run = promisify(execFile);

/**
 * exportVerifier locally, as in AWS: `sls invoke local` with the EventBridge event S3 sends, and
 * `sls offline` with each upload to the local S3 server turned into that event and delivered
 * through the emulated Lambda Invoke API (asynchronously, as EventBridge invokes it).
 */
const EVENT_FIXTURE = 'test/fixtures/verification/object-created-event.json';
const fixture = JSON.parse(readFileSync(join(projectRoot, EVENT_FIXTURE), 'utf8')) as { detail: { bucket: { name: string }; object: { key: string } } };
const fixtureBucket = fixture.detail.bucket.name;

let env: SampleEnvironment;
let offline: Offline | undefined;
let uploads: UploadForwarding;

async function newRunWithSteps(): Promise<string> {
  const [run] = await env.db.sql<{ id: string }[]>`
    INSERT INTO jobs.runs (job, trigger, status, started_at, finished_at) VALUES ('export', 'manual', 'succeeded', now(), now()) RETURNING id`;
  await env.db.sql`INSERT INTO jobs.run_steps (run_id, position, name, status) VALUES (${run!.id}, 0, 'water', 'succeeded')`;
  return run!.id;
}

async function tagsOf(bucket: string, key: string) {
  const { TagSet } = await env.s3.client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
  return Object.fromEntries((TagSet ?? []).map((t) => [t.Key, t.Value]));
}

/** Waits for what the verifier records, saying what the emulator printed if it never comes. */
const waitFor = <T>(what: string, read: () => Promise<T | undefined>): Promise<T> =>
  waitUntil(what, read, { intervalMs: 300, context: () => offline?.output() ?? '' });

beforeAll(async () => {
  env = await startSampleEnvironment();
  await env.s3.client.send(new CreateBucketCommand({ Bucket: fixtureBucket }));
}, 120_000);

afterAll(async () => {
  await offline?.stop();
  await env?.stop();
});

describe('exportVerifier locally', () => {
  it('sls invoke local -f exportVerifier -p <event.json> verifies the object the event names, tags it and records it on the step', async () => {
    const runId = await newRunWithSteps();
    await env.s3.client.send(
      new PutObjectCommand({ Bucket: fixtureBucket, Key: fixture.detail.object.key, Body: await buildSchemaTarball('water', SAMPLE_TABLES), Metadata: { 'run-id': runId, schema: 'water' } }),
    );
    const { stdout } = await run('npx', ['serverless', 'invoke', 'local', '--function', 'exportVerifier', '--path', EVENT_FIXTURE], {
      cwd: projectRoot,
      env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', DATABASE_URL: env.db.url, EXPORT_BUCKET: fixtureBucket, S3_ENDPOINT: env.s3.endpoint },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 180_000,
    });
    expect(stdout).toContain('"status": "verified"');
    expect(await tagsOf(fixtureBucket, fixture.detail.object.key)).toEqual({ verified: 'true' });
    const [step] = await env.db.sql`SELECT verification FROM jobs.run_steps WHERE run_id = ${runId} AND name = 'water'`;
    expect(step?.verification).toMatchObject({ status: 'verified', problems: [] });
  }, 200_000);

  describe('under sls offline, started by uploads to the local S3 server', () => {
    beforeAll(async () => {
      offline = await startOffline({ DATABASE_URL: env.db.url, EXPORT_BUCKET: env.bucket, S3_ENDPOINT: env.s3.endpoint });
      uploads = verifyUploadsThroughOffline(offline, env);
    }, 180_000);

    it('verifies every tarball the export uploads, recording each on its step of the run', async () => {
      const response = await fetch(`${offline!.httpUrl}/jobs/export`, { method: 'POST', headers: { 'x-api-key': localApiKey() } });
      expect(response.status, offline!.output()).toBe(204);
      const runId = response.headers.get('location')!.split('/').at(-1)!;
      const schemas = [...DEFAULT_EXPORT_SCHEMAS];
      const steps = await waitFor('a verification on every step', async () => {
        const rows = await env.db.sql<{ name: string; verification: { status: string } | null }[]>`
          SELECT name, verification FROM jobs.run_steps WHERE run_id = ${runId} ORDER BY position`;
        return rows.length === schemas.length && rows.every((r) => r.verification) ? rows : undefined;
      });
      expect(steps.map((s) => [s.name, s.verification?.status])).toEqual(schemas.map((schema) => [schema, 'verified']));
      // Where operators read it: the run over HTTP lists each step with its verification.
      const shown = (await (await fetch(`${offline!.httpUrl}/jobs/runs/${runId}`, { headers: { 'x-api-key': localApiKey() } })).json()) as {
        steps: { name: string; verification?: { status: string; checkedAt: string; problems: unknown[] } }[];
      };
      expect(shown.steps.map((s) => [s.name, s.verification?.status, s.verification?.problems])).toEqual(schemas.map((schema) => [schema, 'verified', []]));
      for (const schema of schemas) {
        const key = `export/${schema}.tgz`;
        const tags = await waitFor(`the tag on ${key}`, async () => {
          const found = await tagsOf(env.bucket, key).catch(() => undefined);
          return found?.verified === undefined ? undefined : found;
        });
        expect(tags, key).toEqual({ verified: 'true' });
      }
      expect(uploads.forwarded.map((e) => e.detail.object.key).sort()).toEqual(schemas.map((s) => `export/${s}.tgz`).sort());
    }, 200_000);

    it('fails a corrupted upload: recorded on the step, tagged false, logged as an error', async () => {
      const runId = await newRunWithSteps();
      const corrupted = flipByteInside(await buildSchemaTarball('water', SAMPLE_TABLES), 'alcs', 'b');
      await env.s3.client.send(new PutObjectCommand({ Bucket: env.bucket, Key: 'export/water.tgz', Body: corrupted, Metadata: { 'run-id': runId, schema: 'water' } }));
      const verification = await waitFor('the verification on the step', async () => {
        const [step] = await env.db.sql`SELECT verification FROM jobs.run_steps WHERE run_id = ${runId} AND name = 'water'`;
        return step?.verification ?? undefined;
      });
      expect(verification).toMatchObject({ status: 'failed', problems: [{ kind: 'sha256', table: 'charge_versions' }] });
      expect(await tagsOf(env.bucket, 'export/water.tgz')).toEqual({ verified: 'false' });
      // The JSON line the alarm's metric filter matches: { ($.level = "ERROR") && ($.message = "Export verification failed") }.
      const logged = offline!
        .output()
        .split('\n')
        .map((line) => {
          try {
            return JSON.parse(line) as { level?: string; message?: string; runId?: string; problems?: string[] };
          } catch {
            return {}; // the emulator's own lines
          }
        })
        .find((entry) => entry?.level === 'ERROR' && entry.message === 'Export verification failed' && entry.runId === runId);
      expect(logged?.problems).toEqual([expect.stringMatching(/^charge_versions \(water\/charge_versions\.csv\): sha256 expected/)]);
    }, 120_000);
  });
});
