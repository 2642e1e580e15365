/**
 * `npm run verify-export -- <file.tgz | s3://bucket/key>`: checks a downloaded (or stored) export
 * tarball against its manifest, as the exportVerifier function does when one is uploaded.
 *
 * Exit 0: whole, one line per table. Exit 1: each problem on its own line (table, expected,
 * found). Exit 2: it cannot be read at all (not found, not gzip, a read error).
 * S3 addresses use the usual AWS credentials, or S3_ENDPOINT for a local S3 server.
 */
import './quiet-sdk-warning';
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createS3Client } from '../lib/clients/s3';
import { isNotFound, openTarballObject } from '../lib/verification/open-tarball-object';
import { verifyTarball } from '../lib/verification/verify-tarball';

const USAGE = 'Usage: npm run verify-export -- <file.tgz | s3://bucket/key>';

async function open(source: string): Promise<Readable> {
  const s3Address = /^s3:\/\/([^/]+)\/(.+)$/.exec(source);
  if (!s3Address) {
    await access(source);
    return createReadStream(source, { highWaterMark: 1024 * 1024 });
  }
  const s3 = createS3Client({ endpoint: process.env.S3_ENDPOINT || undefined });
  const { body } = await openTarballObject(s3, { bucket: s3Address[1]!, key: s3Address[2]! });
  body.once('close', () => s3.destroy());
  return body;
}

function describeReadError(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === 'ENOENT' || isNotFound(error)) return 'not found';
  if (code === 'EISDIR') return 'is a folder';
  return (error as Error).message || String(error);
}

async function main(args: string[]): Promise<number> {
  if (args.length !== 1 || args[0]!.startsWith('-')) {
    console.error(USAGE);
    return 2;
  }
  const source = args[0]!;
  let result;
  try {
    result = await verifyTarball(await open(source));
  } catch (error) {
    console.error(`${source}: cannot be read: ${describeReadError(error)}`);
    return 2;
  }
  if (result.status === 'unreadable') {
    console.error(`${source}: cannot be read: ${result.problems.map((p) => p.message).join('; ')}`);
    return 2;
  }
  if (result.status === 'failed') {
    console.log(`${source}: FAILED, ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}:`);
    for (const problem of result.problems) console.log(`  ${problem.message}`);
    return 1;
  }
  for (const t of result.tables) {
    console.log(`ok  ${result.schema}.${t.table}  ${t.rows} rows  ${t.bytes} bytes  sha256 ${t.sha256}`);
  }
  console.log(`${source}: verified, ${result.tables.length} table${result.tables.length === 1 ? '' : 's'} of schema ${result.schema}, each as the manifest says`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(error);
    process.exitCode = 2;
  },
);
