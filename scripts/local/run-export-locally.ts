/**
 * The quick start's first command (`npm run export:local`): runs the real exportWorker with
 * `sls invoke local` against a local database (the embedded PostgreSQL under .local/postgres, or
 * DATABASE_URL) and a local S3 server started here, seeding a sample database first if it has none,
 * then copies the tarballs to .local/export/. Each tarball the export uploads is verified as in AWS:
 * the local S3 server's event for it is turned into EventBridge's "Object Created" event and handed
 * to the exportVerifier handler here. Everything it starts is stopped when it ends, fails or is
 * interrupted.
 *
 * `npm run export:local -- --release <run id>` first marks that run failed ('interrupted'): a run
 * left `running` by an export you interrupted blocks the next one until its lease expires.
 */
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { closeDatabase } from '../../lib/clients/database';
import { createS3Client } from '../../lib/clients/s3';
import { readExportSettings } from '../../lib/config';
import { migrateDatabase } from '../migrate-database';
import { seedSampleDatabase } from '../sample-database/seed-sample-database';
import { createExportVerifierFunction } from '../../lib/verification/export-verifier-function';
import type { VerifierResponse } from '../../lib/verification/export-verifier-function';
import { forwardUploadsToVerifier } from './forward-uploads-to-verifier';
import { localStateDir, onShutdown, shutdown, shutdownOnSignals, spawnServerless, startLocalDatabase, startLocalS3 } from './local-services';

const bucket = process.env.EXPORT_BUCKET ?? 'water-abstraction-jobs-local-export';

interface BlockingRun {
  id: string;
  status: string;
  requested_at: Date;
  lease_expires_at: Date | null;
}

/** The active export run that made this invocation skip, if it skipped. */
async function findBlockingRun(databaseUrl: string): Promise<BlockingRun | undefined> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [latest] = await sql<{ status: string }[]>`SELECT status FROM jobs.runs WHERE job = 'export' ORDER BY requested_at DESC LIMIT 1`;
    if (latest?.status !== 'skipped') return undefined;
    const [active] = await sql<BlockingRun[]>`
      SELECT id, status, requested_at, lease_expires_at FROM jobs.runs WHERE job = 'export' AND status IN ('queued', 'running')`;
    return active;
  } finally {
    await sql.end();
  }
}

async function releaseRun(databaseUrl: string, id: string): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const released = await sql`
      UPDATE jobs.runs SET status = 'failed', finished_at = now(), error = 'interrupted'
      WHERE id = ${id} AND job = 'export' AND status IN ('queued', 'running') RETURNING id`;
    console.log(released.length ? `Released export run ${id} (now failed: interrupted)` : `No queued or running export run ${id} to release`);
  } finally {
    await sql.end();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { release: { type: 'string' } } });
  shutdownOnSignals();
  const database = await startLocalDatabase();
  onShutdown(database.stop);
  const databaseUrl = database.url;
  await migrateDatabase(databaseUrl);
  if (values.release) await releaseRun(databaseUrl, values.release);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const { seeded } = await seedSampleDatabase(sql);
    console.log(seeded ? `Seeded a sample database at ${databaseUrl}` : `Using the existing schemas at ${databaseUrl}`);
  } finally {
    await sql.end();
  }

  const s3 = await startLocalS3(resolve(localStateDir(), 's3'), bucket);
  onShutdown(s3.close);
  console.log(`Local S3 server (s3rver) at ${s3.endpoint}, bucket ${bucket}`);

  const env = { ...process.env, DATABASE_URL: databaseUrl, EXPORT_BUCKET: bucket, S3_ENDPOINT: s3.endpoint };
  const settings = readExportSettings(env);
  // The verifier's handler (what functions/export-verifier.ts wraps), in this process: it must
  // be where the S3 server's events are. sls offline users get the same through its Lambda API.
  const verify = createExportVerifierFunction(env, createS3Client({ endpoint: s3.endpoint }));
  onShutdown(closeDatabase);
  const verifications: VerifierResponse[] = [];
  const uploads = forwardUploadsToVerifier(s3.server, {
    bucket,
    prefix: settings.prefix,
    deliver: async (event) => verifications.push(await verify(event)),
  });
  // Asynchronously: the S3 server runs in this process and must go on answering meanwhile.
  // No stdin: without --data, invoke local reads the event from a non-terminal stdin.
  const invoke = spawnServerless(['invoke', 'local', '--function', 'exportWorker'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  onShutdown(async () => {
    if (invoke.exitCode !== null || invoke.signalCode !== null) return;
    const exited = once(invoke, 'exit');
    invoke.kill('SIGTERM');
    const kill = setTimeout(() => invoke.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(kill);
  });
  const [status, signal] = (await once(invoke, 'exit')) as [number | null, NodeJS.Signals | null];
  if (status !== 0) {
    console.error(`sls invoke local -f exportWorker exited with ${status ?? signal}`);
    return 1;
  }
  const blocker = await findBlockingRun(databaseUrl);
  if (blocker) {
    console.error(
      `\nNothing was exported: export run ${blocker.id} is still ${blocker.status} (requested ${blocker.requested_at.toISOString()}` +
        `${blocker.lease_expires_at ? `, lease until ${blocker.lease_expires_at.toISOString()}` : ''}).\n` +
        'If it is a run you interrupted, it stops blocking when its lease expires; to release it now:\n' +
        `  npm run export:local -- --release ${blocker.id}`,
    );
    return 1;
  }

  const client = createS3Client({ endpoint: s3.endpoint });
  const outDir = resolve(localStateDir(), 'export');
  mkdirSync(outDir, { recursive: true });
  const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: settings.prefix }));
  console.log('\nThe tarballs:');
  for (const object of listed.Contents ?? []) {
    const body = await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: object.Key }))).Body?.transformToByteArray();
    const file = resolve(outDir, object.Key!.slice(settings.prefix.length));
    writeFileSync(file, body ?? new Uint8Array());
    console.log(`  s3://${bucket}/${object.Key}  (${object.Size} bytes)  copied to ${file}`);
  }
  client.destroy();
  await uploads.settled();
  console.log("\nexportVerifier, started by each upload (object tag verified=true|false; on the run's step when the upload names its run):");
  for (const v of verifications) {
    if (!('key' in v)) {
      console.log(`  could not check a tarball: ${v.error}`);
      continue;
    }
    const recorded = v.step && 'runId' in v.step ? (v.step.outcome === 'recorded' ? `recorded on run ${v.step.runId}, step ${v.step.schema}` : `run ${v.step.runId} has no step ${v.step.schema}`) : 'not recorded: the upload names no run';
    console.log(`  s3://${bucket}/${v.key}  ${v.status}${v.problems.length > 0 ? ` (${v.problems.join('; ')})` : ''}; ${recorded}`);
  }
  console.log(`\nCheck a copy yourself with: npm run verify-export -- ${resolve(outDir, 'water.tgz')}`);
  console.log(`\nUnpack one with: tar -xzf ${resolve(outDir, 'water.tgz')}`);
  return 0;
}

main().then(
  async (code) => {
    await shutdown();
    process.exit(code);
  },
  async (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    await shutdown();
    process.exit(1);
  },
);
