import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { buildSchemaTarball, flipByteInside, SAMPLE_TABLES } from '../fixtures/verification/build-tarball';
import { projectRoot } from '../support/packaged-template';
import { startTestS3 } from '../support/s3';
import type { TestS3 } from '../support/s3';

const run = promisify(execFile);

/** `npm run verify-export -- <source>`, as a person runs it: its exit code and output. */
async function verifyExport(source: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('npm', ['run', '--silent', 'verify-export', '--', source], {
      cwd: projectRoot,
      env: { ...process.env, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout: string; stderr: string };
    if (typeof failure.code !== 'number') throw error;
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

let folder: string;
let s3: TestS3;
let bucket: string;
let good: Buffer;

function fileOf(name: string, content: Buffer): string {
  const path = join(folder, name);
  writeFileSync(path, content);
  return path;
}

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'waj-verify-cli-'));
  good = await buildSchemaTarball('water', SAMPLE_TABLES);
  s3 = await startTestS3();
  bucket = await s3.createBucket();
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'export/water.tgz', Body: good }));
});

afterAll(async () => {
  await s3?.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('npm run verify-export', () => {
  it('exits 0 with one line per table for a whole tarball', async () => {
    const { code, stdout } = await verifyExport(fileOf('good.tgz', good));
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^ok {2}water\.licences {2}3 rows {2}\d+ bytes {2}sha256 [0-9a-f]{64}$/);
    expect(lines[1]).toMatch(/^ok {2}water\.charge_versions {2}2 rows /);
    expect(lines[2]).toMatch(/^ok {2}water\.empty_table {2}0 rows /);
    expect(lines[3]).toMatch(/verified, 3 tables of schema water/);
  });

  it('exits 0 for a tarball in S3 (s3://bucket/key)', async () => {
    const { code, stdout, stderr } = await verifyExport(`s3://${bucket}/export/water.tgz`, { S3_ENDPOINT: s3.endpoint });
    expect(code).toBe(0);
    expect(stdout).toContain('verified, 3 tables');
    // Nothing else for the person to read: not the AWS SDK's Node.js version warning either.
    expect(stderr).toBe('');
  });

  it('exits 1 naming the table and the sha256 when a byte changed', async () => {
    const { code, stdout } = await verifyExport(fileOf('flipped.tgz', flipByteInside(good, 'alcs', 'b')));
    expect(code).toBe(1);
    expect(stdout).toMatch(/FAILED, 1 problem:\n {2}charge_versions \(water\/charge_versions\.csv\): sha256 expected [0-9a-f]{64}, found [0-9a-f]{64}\n$/);
  });

  it('exits 1 for a truncated tarball', async () => {
    const { code, stdout } = await verifyExport(fileOf('truncated.tgz', good.subarray(0, good.length - 40)));
    expect(code).toBe(1);
    expect(stdout).toMatch(/ {2}Truncated: /);
  });

  it('exits 1 naming a CSV missing from the manifest and a manifest entry missing from the archive', async () => {
    const tgz = await buildSchemaTarball('water', SAMPLE_TABLES, {
      manifest: (m) => ({
        ...m,
        tables: [...m.tables.filter((t) => t.table !== 'licences'), { table: 'returns', file: 'water/returns.csv', rows: 1, bytes: 9, sha256: 'f'.repeat(64) }],
      }),
    });
    const { code, stdout } = await verifyExport(fileOf('mismatched.tgz', tgz));
    expect(code).toBe(1);
    expect(stdout).toContain('  returns (water/returns.csv): in the manifest but not in the archive\n');
    expect(stdout).toContain('  licences (water/licences.csv): in the archive (3 rows) but not in the manifest\n');
  });

  it('exits 1 with expected and found for a row count off by one', async () => {
    const tgz = await buildSchemaTarball('water', SAMPLE_TABLES, {
      manifest: (m) => ({ ...m, tables: m.tables.map((t) => (t.table === 'licences' ? { ...t, rows: 2 } : t)) }),
    });
    const { code, stdout } = await verifyExport(fileOf('rows.tgz', tgz));
    expect(code).toBe(1);
    expect(stdout).toContain('  licences (water/licences.csv): rows expected 2, found 3\n');
  });

  it('exits 2 for a file that is not gzip, one that does not exist, and a missing S3 object', async () => {
    const notGzip = await verifyExport(fileOf('plain.tar', gunzipSync(good)));
    expect(notGzip.code).toBe(2);
    expect(notGzip.stderr).toMatch(/cannot be read: Not a gzip file/);
    const missing = await verifyExport(join(folder, 'nothing-here.tgz'));
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringMatching(/nothing-here\.tgz: cannot be read: not found/) });
    const missingObject = await verifyExport(`s3://${bucket}/export/nothing.tgz`, { S3_ENDPOINT: s3.endpoint });
    expect(missingObject).toMatchObject({ code: 2, stderr: expect.stringMatching(/cannot be read: not found/) });
  });
});
