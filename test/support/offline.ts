import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../../scripts/local/embedded-postgres';
import { forwardUploadsToVerifier, invokeThroughLambdaApi } from '../../scripts/local/forward-uploads-to-verifier';
import type { UploadForwarding } from '../../scripts/local/forward-uploads-to-verifier';
import { startOrphanWatchdog } from '../../scripts/local/orphan-watchdog';
import { projectRoot } from './packaged-template';
import type { SampleEnvironment } from './sample-environment';

/** A free loopback port: the one probe the local scripts use too. */
export { freePort };


/** The API key serverless-offline accepts locally (serverless.yml reads JOBS_API_KEY). */
export function localApiKey(): string {
  return process.env.JOBS_API_KEY ?? 'local-jobs-api-key';
}

export interface Offline {
  /** Base URL of the emulated API Gateway, e.g. http://127.0.0.1:43123 */
  httpUrl: string;
  /** Endpoint of the emulated Lambda Invoke API. */
  lambdaEndpoint: string;
  /** Everything the emulator printed so far (its own lines and the functions' logs). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Runs `serverless offline start` for the dev stage on free ports, with the given environment
 * on top of this process's, and waits until it serves HTTP. The API functions dispatch through
 * its Lambda Invoke API (JOB_DISPATCH=lambda, LAMBDA_ENDPOINT pointing at it) unless env says otherwise.
 */
export async function startOffline(env: Record<string, string>): Promise<Offline> {
  const [httpPort, lambdaPort] = [await freePort(), await freePort()];
  const lambdaEndpoint = `http://127.0.0.1:${lambdaPort}`;
  let log = '';
  const child: ChildProcess = spawn('npx', ['serverless', 'offline', 'start', '--stage', 'dev'], {
    cwd: projectRoot,
    env: {
      ...process.env,
      SLS_TELEMETRY_DISABLED: '1',
      OFFLINE_HTTP_PORT: String(httpPort),
      OFFLINE_LAMBDA_PORT: String(lambdaPort),
      JOB_DISPATCH: 'lambda',
      LAMBDA_ENDPOINT: lambdaEndpoint,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  // It runs in a process group of its own, which a Ctrl-C of the test run does not reach.
  const watchdog = child.pid === undefined ? undefined : startOrphanWatchdog({ pid: child.pid, group: true, signal: 'SIGTERM', graceMs: 5000 });
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));

  const stop = async () => {
    watchdog?.release();
    if (child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(-child.pid, 'SIGTERM');
    const timer = setTimeout(() => child.pid && process.kill(-child.pid, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + 120_000;
  while (!/Server ready/.test(log)) {
    if (child.exitCode !== null) throw new Error(`serverless offline exited with ${child.exitCode}:\n${log}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`serverless offline did not start in time:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { httpUrl: `http://127.0.0.1:${httpPort}`, lambdaEndpoint, output: () => log, stop };
}

/**
 * Hands each tarball the export uploads to the environment's bucket to the emulator's
 * exportVerifier, through its Lambda API, as S3 and EventBridge start it in AWS; only while
 * `enabled()` says so, for a test that needs the check for a while.
 */
export function verifyUploadsThroughOffline(offline: Offline, environment: SampleEnvironment, enabled: () => boolean = () => true): UploadForwarding {
  const verify = invokeThroughLambdaApi(offline.lambdaEndpoint, 'water-abstraction-jobs-dev-exportVerifier');
  return forwardUploadsToVerifier(environment.s3.server, {
    bucket: environment.bucket,
    prefix: 'export/',
    deliver: async (event) => (enabled() ? verify(event) : undefined),
  });
}
