/**
 * The quick start's first command (`npm run export:local`): runs the real exportWorker with
 * `sls invoke local` against a local database (the embedded PostgreSQL under .local/postgres, or
 * DATABASE_URL) and a local S3 server started here, seeding a sample database first if it has none,
 * then copies the tarballs to .local/export/. Each tarball the export uploads is verified as in AWS:
 * the local S3 server's event for it is turned into EventBridge's "Object Created" event and handed
 * to the exportVerifier handler here. Everything it starts is stopped when it ends, fails or is
 * interrupted.
 *
 * It prints lines for a person (what started, a line per schema as its step ends, progress while
 * steps run, the tarballs and their verification, what to do next); the JSON logs, of the worker
 * and of this process, go to a file under <LOCAL_DIR>/logs, or to the terminal with LOG_FORMAT=json.
 *
 * `npm run export:local -- --release <run id>` first marks that run failed ('interrupted'): a run
 * left `running` by an export you interrupted blocks the next one until its lease expires.
 */
import '../quiet-sdk-warning';
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
import { divertJsonLines, logsToTerminal, openLocalLogFile } from './local-log-file';
import { formatBytes } from '../format-amounts';
import { watchExportRun } from './watch-export-run';
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
  const log = openLocalLogFile(localStateDir(), 'export-local');
  const toTerminal = logsToTerminal();
  if (!toTerminal) divertJsonLines(log.write);
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
  console.log(`Exporting ${settings.schemas.join(', ')} with the real worker (sls invoke local -f exportWorker); its logs go to ${toTerminal ? 'this terminal (LOG_FORMAT=json)' : log.path}`);
  const startedAt = Date.now();
  const watchSql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  onShutdown(() => watchSql.end({ timeout: 1 }));
  const stopWatching = watchExportRun(watchSql, new Date(startedAt - 1000));
  const invoke = spawnServerless(['invoke', 'local', '--function', 'exportWorker'], { env, stdio: ['ignore', toTerminal ? 'inherit' : 'pipe', toTerminal ? 'inherit' : 'pipe'] });
  invoke.stdout?.on('data', log.write);
  invoke.stderr?.on('data', log.write);
  onShutdown(async () => {
    if (invoke.exitCode !== null || invoke.signalCode !== null) return;
    const exited = once(invoke, 'exit');
    invoke.kill('SIGTERM');
    const kill = setTimeout(() => invoke.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(kill);
  });
  const [status, signal] = (await once(invoke, 'exit')) as [number | null, NodeJS.Signals | null];
  await stopWatching();
  if (status !== 0) {
    console.error(`sls invoke local -f exportWorker exited with ${status ?? signal}: see ${toTerminal ? 'its logs above' : log.path}`);
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
  const copies: { key: string; file: string; size: number }[] = [];
  for (const object of listed.Contents ?? []) {
    const body = await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: object.Key }))).Body?.transformToByteArray();
    const file = resolve(outDir, object.Key!.slice(settings.prefix.length));
    writeFileSync(file, body ?? new Uint8Array());
    copies.push({ key: object.Key!, file, size: object.Size ?? 0 });
  }
  client.destroy();
  await uploads.settled();
  const checked = new Map(verifications.filter((v) => 'key' in v).map((v) => [v.key, v]));
  console.log(`\nThe tarballs (in s3://${bucket}/${settings.prefix} and copied to ${outDir}), each checked by exportVerifier as it landed:`);
  for (const { key, file, size } of copies) {
    const v = checked.get(key);
    const outcome = !v ? 'not checked' : v.status === 'verified' ? 'verified against its manifest' : `FAILED verification: ${v.problems.join('; ')}`;
    console.log(`  ${file.slice(outDir.length + 1).padEnd(14)} ${formatBytes(size).padStart(9)}  ${outcome}`);
  }
  for (const v of verifications) if (!('key' in v)) console.log(`  could not check a tarball: ${v.error}`);
  const sample = resolve(outDir, copies[0]?.file.slice(outDir.length + 1) ?? 'water.tgz');
  console.log(`\nDone in ${((Date.now() - startedAt) / 1000).toFixed(0)} s. The logs: ${toTerminal ? 'above (LOG_FORMAT=json)' : log.path}`);
  console.log('Next:');
  console.log(`  npm run verify-export -- ${sample}     check a tarball yourself`);
  console.log(`  tar -xzf ${sample}     unpack one (definition.json, schema.sql, a CSV per table, manifest.json)`);
  console.log(`  npm run restore -- ${outDir} --into postgres://...     load them into a database (docs/restore.md)`);
  console.log('  npm run local     the whole stack, to call the API and open the dashboard');
  const failed = [...checked.values()].some((v) => v.status !== 'verified');
  return failed ? 1 : 0;
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
