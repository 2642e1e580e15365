/**
 * `npm run local`: the whole stack on this machine in one command. A database (the embedded
 * PostgreSQL under <LOCAL_DIR>/postgres, or DATABASE_URL) migrated and seeded with the sample
 * database, a local S3 server with the export bucket (or S3_ENDPOINT), and `sls offline` with the
 * API functions invoking the workers through its Lambda Invoke API, so `POST /jobs/export` takes the
 * real asynchronous path. Prints the API's address, the key, the dashboard's address, a curl line
 * for each keyed route and the `sls invoke local` line of each worker; Ctrl-C (or SIGTERM) stops
 * everything it started. The restore job's target (RESTORE_DATABASE_URL) is a second database on
 * the same server, `<database>_reporting`, created when missing.
 */
import '../quiet-sdk-warning';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import postgres from 'postgres';
import { migrateDatabase } from '../migrate-database';
import { seedSampleDatabase } from '../sample-database/seed-sample-database';
import { curlLines, pageAddresses, readStackFunctions, sh } from './stack-routes';
import { startOrphanWatchdog } from './orphan-watchdog';
import { divertJsonLines, logsToTerminal, openLocalLogFile } from './local-log-file';
import {
  ensureDatabase,
  isShuttingDown,
  localStateDir,
  onShutdown,
  projectRoot,
  shutdown,
  shutdownOnSignals,
  spawnServerless,
  startLocalDatabase,
  startLocalS3,
} from './local-services';

const env = process.env;
const bucket = env.EXPORT_BUCKET?.trim() || 'water-abstraction-jobs-local-export';
const httpPort = env.OFFLINE_HTTP_PORT?.trim() || '3000';
const lambdaPort = env.OFFLINE_LAMBDA_PORT?.trim() || '3002';
const apiKey = env.JOBS_API_KEY?.trim() || 'local-jobs-api-key';
const dispatch = env.JOB_DISPATCH?.trim() || 'lambda';

/**
 * What a worker needs by hand beyond the settings: the verifier an S3 event (the fixture's names this
 * stack's bucket and export/water.tgz); null for one that runs only inside a run (a step event names it).
 */
const BY_HAND: Record<string, string | null> = {
  exportVerifier: '-p test/fixtures/verification/object-created-event.json',
  exportSchemaWorker: null,
  restoreSchemaWorker: null,
};

async function waitForOffline(offline: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 180_000;
  while (!/Server ready/.test(output())) {
    if (offline.exitCode !== null || offline.signalCode !== null) throw new Error(`sls offline exited (${offline.exitCode ?? offline.signalCode}) before it was ready`);
    if (Date.now() > deadline) throw new Error('sls offline was not ready after 3 minutes');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function main(): Promise<void> {
  shutdownOnSignals();
  const stateDir = localStateDir(env);
  // The functions' JSON logs (and this process's) go to a file, or here with LOG_FORMAT=json.
  const log = openLocalLogFile(stateDir, 'local');
  const toTerminal = logsToTerminal(env);
  if (!toTerminal) divertJsonLines(log.write);
  const database = await startLocalDatabase(env);
  onShutdown(database.stop);
  await migrateDatabase(database.url);
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  try {
    const { seeded } = await seedSampleDatabase(sql);
    console.log(seeded ? 'Seeded the sample database' : 'The database already has the six schemas: kept as they are');
  } finally {
    await sql.end();
  }

  // The restore job's target, the reporting team's database: a second database on the same server.
  const reportingUrl = env.RESTORE_DATABASE_URL?.trim() || reportingDatabaseUrl(database.url);
  await ensureDatabase(reportingUrl);

  let s3Endpoint = env.S3_ENDPOINT?.trim();
  if (!s3Endpoint) {
    const s3 = await startLocalS3(resolve(stateDir, 's3'), bucket);
    onShutdown(s3.close);
    s3Endpoint = s3.endpoint;
  }

  const settings: Record<string, string> = { DATABASE_URL: database.url, RESTORE_DATABASE_URL: reportingUrl, EXPORT_BUCKET: bucket, S3_ENDPOINT: s3Endpoint };
  const offlineEnv: NodeJS.ProcessEnv = {
    ...env,
    ...settings,
    JOBS_API_KEY: apiKey,
    OFFLINE_HTTP_PORT: httpPort,
    OFFLINE_LAMBDA_PORT: lambdaPort,
    JOB_DISPATCH: dispatch,
  };
  // The API functions' asynchronous InvokeCommand goes to sls offline's own Lambda Invoke API.
  if (dispatch === 'lambda' && !env.LAMBDA_ENDPOINT?.trim()) offlineEnv.LAMBDA_ENDPOINT = `http://127.0.0.1:${lambdaPort}`;

  console.log('Starting sls offline (bundles the functions first)...');
  const stackFunctions = readStackFunctions(projectRoot, offlineEnv);
  stackFunctions.catch(() => {}); // awaited below, once sls offline is up
  // A process group of its own, stopped whole (with its esbuild process) on shutdown.
  const offline = spawnServerless(['offline', 'start'], { env: offlineEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const watchdog = startOrphanWatchdog({ pid: offline.pid!, group: true, signal: 'SIGTERM', graceMs: 10_000 });
  onShutdown(async () => {
    watchdog.release();
    if (offline.exitCode !== null || offline.signalCode !== null) return;
    const exited = new Promise((done) => offline.once('exit', done));
    process.kill(-offline.pid!, 'SIGTERM');
    const kill = setTimeout(() => process.kill(-offline.pid!, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(kill);
  });
  let banner = '';
  let ready = false;
  const relay = (chunk: Buffer) => {
    if (!ready) banner += chunk.toString();
    else if (toTerminal) process.stdout.write(chunk);
    else log.write(chunk);
  };
  offline.stdout!.on('data', relay);
  offline.stderr!.on('data', relay);
  try {
    await waitForOffline(offline, () => banner);
  } catch (error) {
    console.error(banner);
    throw error;
  }
  ready = true;

  const api = `http://127.0.0.1:${httpPort}`;
  const functions = await stackFunctions;
  const routes = functions.flatMap((fn) => fn.routes);
  const workers = functions.filter((fn) => fn.routes.length === 0).map((fn) => fn.name);
  const settingsLine = Object.entries(settings)
    .map(([name, value]) => `${name}=${sh(value)}`)
    .join(' ');
  console.log(
    [
      '',
      'The local stack is up. Ctrl-C stops all of it.',
      '',
      `  API:        ${api}`,
      `  API key:    ${apiKey}   (the x-api-key header; JOBS_API_KEY sets it)`,
      ...pageAddresses(api, routes).map((page) => `  Dashboard:  ${page}   (open it in a browser; it asks for the API key)`),
      `  Lambda API: http://127.0.0.1:${lambdaPort}   (${dispatch === 'lambda' ? 'the API functions invoke the workers through it' : `JOB_DISPATCH=${dispatch}`})`,
      `  PostgreSQL: ${database.url}${database.embedded ? `   (embedded, data in ${resolve(stateDir, 'postgres')})` : ''}`,
      `  Reporting:  ${reportingUrl}   (where POST /jobs/restore loads the export; RESTORE_DATABASE_URL sets it)`,
      `  S3:         ${s3Endpoint}, bucket ${bucket}${env.S3_ENDPOINT?.trim() ? '' : `   (objects in ${resolve(stateDir, 's3')})`}`,
      `  Schedules:  ${env.OFFLINE_SCHEDULES?.trim() === 'true' ? 'fire at their times (OFFLINE_SCHEDULES=true), in this machine\'s time zone' : 'off (OFFLINE_SCHEDULES=true turns them on)'}`,
      '',
      'Each route (RUN_ID: the last part of a POST\'s Location):',
      ...curlLines(api, apiKey, routes).map((line) => `  ${line}`),
      '',
      'Each worker by hand, from another terminal while this runs:',
      ...workers.filter((fn) => BY_HAND[fn] !== null).map((fn) => `  ${settingsLine} npx serverless invoke local -f ${fn}${BY_HAND[fn] ? ` ${BY_HAND[fn]}` : ''}`),
      ...workers.filter((fn) => BY_HAND[fn] === null).map((fn) => `  (${fn} runs one step of an export run: exportWorker invokes it)`),
      '',
      toTerminal ? 'The functions\' logs follow (LOG_FORMAT=json).' : `The functions' logs go to ${log.path} (LOG_FORMAT=json prints them here).`,
      '',
    ].join('\n'),
  );

  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) => offline.once('exit', (c, s) => done([c, s])));
  if (isShuttingDown()) return new Promise(() => {}); // Ctrl-C: the signal handler finishes and exits
  throw new Error(`sls offline stopped on its own (${code ?? signal})`);
}

/** `<database>_reporting` on the same server: the restore job's target unless RESTORE_DATABASE_URL names one. */
function reportingDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${decodeURIComponent(url.pathname.slice(1))}_reporting`;
  return url.toString();
}

main().catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  await shutdown();
  process.exit(1);
});
