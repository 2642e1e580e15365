/**
 * npm run bench:cold-start: packages the service as for a deployment (`serverless package`) and,
 * for each function, prints its zip's size and its cold load: a fresh `node` requiring the bundled
 * handler module from the unpacked zip (the median of BENCH_RUNS runs, default 9), beside a
 * baseline measured in the same run (a fresh `node` requiring an empty module) so a busy machine
 * shows as a slow baseline. Targets: API functions at most 500 KB and 80 ms, workers 1.5 MB.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const API_FUNCTIONS = new Set(['exportApi', 'timeLimitedApi', 'getRun', 'listRuns', 'dashboard']);
const TARGETS = { api: { zipBytes: 500_000, loadMs: 80 }, worker: { zipBytes: 1_500_000 } };

/** Settings every handler reads at load; nothing is connected at load, so none of them need be reachable. */
const LOAD_ENV = {
  PATH: process.env.PATH,
  AWS_REGION: 'eu-west-2',
  LOG_LEVEL: 'INFO',
  DATABASE_URL_PARAMETER: '/water-abstraction-jobs/bench/database-url',
  EXPORT_BUCKET: 'bench-bucket',
  EXPORT_WORKER_FUNCTION: 'water-abstraction-jobs-bench-exportWorker',
  EXPORT_SCHEMA_WORKER_FUNCTION: 'water-abstraction-jobs-bench-exportSchemaWorker',
  TIME_LIMITED_WORKER_FUNCTION: 'water-abstraction-jobs-bench-timeLimitedWorker',
};

/** Milliseconds a fresh node takes to require `file` (measured inside it, so node's own start is not counted). */
function loadMs(file: string, env: Record<string, string | undefined>): number {
  const script = `const t = performance.now(); require(${JSON.stringify(file)}); process.stdout.write(String(performance.now() - t));`;
  const { stdout, stderr, status } = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
  if (status !== 0) throw new Error(`Loading ${file} failed: ${stderr}`);
  return Number(stdout);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const work = mkdtempSync(join(tmpdir(), 'bench-cold-start-'));
try {
  const packageDir = join(work, 'package');
  console.log('Packaging the service (serverless package)...');
  execFileSync(join(root, 'node_modules/.bin/serverless'), ['package', '--package', packageDir], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const state = JSON.parse(readFileSync(join(packageDir, 'serverless-state.json'), 'utf8')) as {
    service: { functions: Record<string, { handler: string; package: { artifact: string } }> };
  };
  const emptyModule = join(work, 'empty.cjs');
  writeFileSync(emptyModule, '');
  const baseline = median(Array.from({ length: RUNS }, () => loadMs(emptyModule, LOAD_ENV)));
  console.log(`\nload average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${RUNS} runs each; baseline (empty module) ${baseline.toFixed(1)} ms\n`);
  console.log('function            kind    zip (KB)   cold load (ms, median)   target');
  let failed = 0;
  for (const [name, fn] of Object.entries(state.service.functions)) {
    const zip = join(packageDir, fn.package.artifact.split('/').pop()!);
    const zipBytes = statSync(zip).size;
    const unpacked = join(work, name);
    execFileSync('unzip', ['-q', zip, '-d', unpacked]);
    const [modulePath] = fn.handler.split(/\.(?=[^.]+$)/);
    const file = join(unpacked, `${modulePath}.cjs`);
    const ms = median(Array.from({ length: RUNS }, () => loadMs(file, { ...LOAD_ENV, AWS_LAMBDA_FUNCTION_NAME: name })));
    const api = API_FUNCTIONS.has(name);
    const ok = api ? zipBytes <= TARGETS.api.zipBytes && ms <= TARGETS.api.loadMs : zipBytes <= TARGETS.worker.zipBytes;
    if (!ok) failed += 1;
    const target = api ? `≤ 500 KB, ≤ 80 ms` : '≤ 1.5 MB';
    console.log(
      `${name.padEnd(20)}${(api ? 'api' : 'worker').padEnd(8)}${(zipBytes / 1000).toFixed(0).padStart(8)}   ${ms.toFixed(1).padStart(10)}               ${target} ${ok ? 'met' : 'NOT MET'}`,
    );
  }
  if (failed > 0) process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
