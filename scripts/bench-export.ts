/**
 * npm run bench:export: the export against what a person would run by hand, in two cases, in
 * one run:
 *   (a) one table of ≥ 1.2 GB of CSV, against `psql \copy ... to stdout | gzip`;
 *   (b) one schema of 32 tables totalling ≥ 1 GB, against `psql \copy` of each table to a file,
 *       then `tar czf` of the folder.
 * Each prints both times, their ratio (theirs / ours), our peak RSS and our peak temporary disk
 * against the compressed size of the schema's largest table.
 *
 * Our export runs in a child process (so its peak RSS is its own; s3rver runs here, in the
 * parent, which also samples the size of the child's temporary folder every 50 ms). The data is
 * built once into the database `waj_bench_export` and kept for later runs (about a minute to
 * build); `--rebuild` builds it again, `--drop` drops it at the end. BENCH_ROWS changes the size
 * of the built data (default 4.5 million rows ≈ 1.27 GB of CSV per case); BENCH_RUNS the number
 * of paired runs per case (default 3: each case's ratio is judged on the median of its runs, as
 * one run's ratio moved by up to 0.27 between runs of the same code, with the machine's other work; peak RSS and temporary disk on
 * the worst run); BENCH_CASES=a or b runs one case; BENCH_CPUS=1 pins our
 * export to one CPU (taskset), as a Lambda of 1,769 MB or less would have, to size the worker;
 * EXPORT_TABLE_PARALLELISM is passed through.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { connectDatabase } from '../lib/clients/database';
import { createS3Client } from '../lib/clients/s3';
import { readExportSettings } from '../lib/config';
import { assertEveryStepSucceeded, exportThroughSteps } from '../test/support/export-steps';
import type { ExportedThroughSteps } from '../test/support/export-steps';
import { logger } from '../lib/logger';
import { adminUrl } from '../test/support/database';
import { startTestS3 } from '../test/support/s3';
import { startDiscardingS3 } from '../test/support/discarding-s3';
import { postgresCpuSeconds } from './bench/postgres-cpu';
import { runCommand } from './bench/run-command';

const DATABASE = 'waj_bench_export';
const ROWS = Number(process.env.BENCH_ROWS ?? 4_500_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const MANY_TABLES = 32;
const CASES = (process.env.BENCH_CASES ?? 'a,b').split(',');
const CPUS = process.env.BENCH_CPUS ? Number(process.env.BENCH_CPUS) : undefined;
const TARGETS = { ratio: 2.0, peakRssMb: 256, tempDiskOfLargest: 1.2 };

interface ChildInput {
  url: string;
  endpoint: string;
  bucket: string;
  schema: string;
  tmpRoot: string;
}
interface ChildOutput {
  result: ExportedThroughSteps;
  maxRssKb: number;
  cpuSeconds: number;
  largestTableCompressedBytes: number;
}

/** Mixed column types and licence-like text, so the CSV compresses like the real data would. */
function buildSql(rows: number): string {
  // (b): 32 tables cut from the same rows in ranges of different lengths (weights 1 to 10), like
  // a real schema's mix of large and small tables; in name order the large ones are not all last.
  const weights = Array.from({ length: MANY_TABLES }, (_, k) => 1 + ((k * 7) % 10));
  const total = weights.reduce((a, b) => a + b, 0);
  let start = 0;
  const many = weights.map((weight, k) => {
    const end = k === MANY_TABLES - 1 ? rows : start + Math.floor((rows * weight) / total);
    const statement = `CREATE TABLE bench_many.table_${String(k).padStart(2, '0')} AS SELECT * FROM bench_one.licence_rows WHERE id > ${start} AND id <= ${end};`;
    start = end;
    return statement;
  });
  return `
    DROP SCHEMA IF EXISTS bench_one CASCADE;
    DROP SCHEMA IF EXISTS bench_many CASCADE;
    CREATE SCHEMA bench_one;
    CREATE TABLE bench_one.licence_rows (
      id bigint PRIMARY KEY, licence_id uuid NOT NULL, licence_ref text NOT NULL, status text NOT NULL,
      amount numeric(14,2), quantity double precision, start_date date, created_at timestamptz NOT NULL,
      is_current boolean NOT NULL, notes text, data jsonb
    );
    INSERT INTO bench_one.licence_rows
    SELECT i,
      md5(i::text)::uuid,
      format('%s/%s/%s/%s', (array['MD','SO','NE','TH','AN'])[1 + i % 5], i % 97, lpad((i % 1000)::text, 3, '0'), i),
      (array['current','superseded','draft','to_setup','review'])[1 + (i * 7) % 5],
      round(((i * 7919) % 1000000)::numeric / 100, 2),
      (i % 10007) * 1.5,
      date '2000-01-01' + (i % 9000)::int,
      timestamptz '2020-01-01 00:00:00+00' + i * interval '37 seconds',
      i % 3 = 0,
      CASE WHEN i % 11 = 0 THEN NULL ELSE concat_ws(' ',
        (array['Abstraction','Licence','River','Borehole','Spray','irrigation','from','the','northern','reach','of','"Mill Lane"','pond,','at','point','grid','reference','SU 123 456','daily','quantity'])[1 + i % 20],
        (array['water','is','taken','for','general','agriculture','and','stored','in','a','reservoir','before','use','on','the','farm','fields','each','summer','season'])[1 + (i * 3) % 20],
        (array['between','April','and','October','under','the','conditions','of','this','licence','which','was','varied','in','2019','after','a','review','by','officers'])[1 + (i * 13) % 20],
        'for', i % 500, 'cubic metres per day') END,
      jsonb_build_object('chargeVersion', NULL, 'region', i % 8,
        'purpose', (array['Spray Irrigation - Direct','Trickle Irrigation','General Farming & Domestic','Vegetable Washing'])[1 + i % 4],
        'source', 'Surface water: ' || i % 31)
    FROM generate_series(1::bigint, ${rows}::bigint) AS i;
    CREATE SCHEMA bench_many;
    ${many.join('\n    ')}
    ANALYZE;
    COMMENT ON SCHEMA bench_many IS 'built with ${rows} rows';
  `;
}

async function prepareDatabase(): Promise<string> {
  const url = new URL(adminUrl);
  url.pathname = `/${DATABASE}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    const exists = await admin`SELECT 1 FROM pg_database WHERE datname = ${DATABASE}`;
    if (exists.length > 0 && process.argv.includes('--rebuild')) await admin.unsafe(`DROP DATABASE "${DATABASE}" WITH (FORCE)`);
    if (exists.length === 0 || process.argv.includes('--rebuild')) await admin.unsafe(`CREATE DATABASE "${DATABASE}" TEMPLATE template0 ENCODING 'UTF8'`);
  } finally {
    await admin.end();
  }
  const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
  try {
    const [built] = await sql<{ comment: string | null }[]>`SELECT obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = 'bench_many'`;
    if (built?.comment !== `built with ${ROWS} rows`) {
      process.stderr.write(`Building the bench data (${ROWS} rows per case) in ${DATABASE}; kept for later runs...\n`);
      const started = performance.now();
      await sql.unsafe(buildSql(ROWS));
      process.stderr.write(`  built in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
    }
  } finally {
    await sql.end();
  }
  return url.toString();
}

async function runChild(input: ChildInput): Promise<void> {
  // Each table's compressed size is only logged (at DEBUG); the bench needs the largest.
  let largestTableCompressedBytes = 0;
  const debug = logger.debug.bind(logger);
  logger.debug = ((message: string, extra?: { compressedBytes?: number }) => {
    if (message === 'Table exported' && extra?.compressedBytes) largestTableCompressedBytes = Math.max(largestTableCompressedBytes, extra.compressedBytes);
    debug(message, extra as never);
  }) as typeof logger.debug;
  const { tableParallelism } = readExportSettings({ ...process.env, EXPORT_BUCKET: input.bucket });
  const sql = connectDatabase(input.url, { max: (tableParallelism ?? availableParallelism()) + 1 });
  const s3 = createS3Client({ endpoint: input.endpoint });
  try {
    // The schema's step as exportSchemaWorker runs it, in a run's snapshot held as the coordinator holds it.
    const result = await exportThroughSteps(
      { bucket: input.bucket, prefix: 'bench/', schemas: [input.schema], tableParallelism },
      { sql, s3, tmpRoot: input.tmpRoot },
    );
    assertEveryStepSucceeded(result);
    const { user, system } = process.cpuUsage();
    const output: ChildOutput = { result, maxRssKb: process.resourceUsage().maxRSS, cpuSeconds: (user + system) / 1e6, largestTableCompressedBytes };
    process.stdout.write(`${JSON.stringify(output)}\n`);
  } finally {
    await sql.end();
    s3.destroy();
  }
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** The PostgreSQL servers' CPU seconds while `work` runs (its backends reaped before the second reading). */
async function measuringServerCpu<T>(work: Promise<T>): Promise<{ value: T; serverCpuSeconds: number }> {
  const before = postgresCpuSeconds();
  const value = await work;
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { value, serverCpuSeconds: postgresCpuSeconds() - before };
}

/** Samples a folder's size every 50 ms while `work` runs; resolves with the work's result and the peak. */
async function withPeakDisk<T>(folder: string, work: Promise<T>): Promise<{ value: T; peakBytes: number }> {
  let peakBytes = 0;
  let running = true;
  const sampling = (async () => {
    while (running) {
      peakBytes = Math.max(peakBytes, await folderBytes(folder));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  try {
    return { value: await work, peakBytes };
  } finally {
    running = false;
    await sampling;
  }
}

const mb = (bytes: number): number => +(bytes / 1e6).toFixed(1);

/** The middle value (the mean of the two middle ones for an even count). */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The CPU time of a bash script's children, from the `times` builtin's second line ("0m1.5s 0m0.2s"). */
function childrenCpuSeconds(timesOutput: string): number {
  const line = timesOutput.trim().split('\n').at(-1) ?? '';
  return [...line.matchAll(/(\d+)m([\d.]+)s/g)].reduce((total, [, minutes, seconds]) => total + Number(minutes) * 60 + Number(seconds), 0);
}

async function main(): Promise<void> {
  const url = await prepareDatabase();
  const s3 = await startTestS3();
  const discarding = await startDiscardingS3();
  const figures: Record<string, unknown>[] = [];
  let missed = false;
  try {
    const bucket = await s3.createBucket();
    const cases = [
      {
        id: 'a',
        name: '(a) one table vs psql \\copy | gzip',
        schema: 'bench_one',
        baseline: async () =>
          runCommand('bash', ['-o', 'pipefail', '-c', `psql "$BENCH_URL" -X -q -c "\\copy bench_one.licence_rows to stdout csv header" | gzip > /dev/null && times`], {
            ...process.env,
            BENCH_URL: url,
          }),
      },
      {
        id: 'b',
        name: `(b) ${MANY_TABLES} tables vs psql \\copy each to a file, then tar czf`,
        schema: 'bench_many',
        baseline: async () => {
          const folder = await mkdtemp(join(tmpdir(), 'waj-bench-by-hand-'));
          try {
            const tables = Array.from({ length: MANY_TABLES }, (_, k) => `table_${String(k).padStart(2, '0')}`);
            const copies = tables.map((t) => `\\copy bench_many.${t} to '${folder}/csv/${t}.csv' csv header`).join('\n');
            return await runCommand('bash', ['-o', 'pipefail', '-c', `mkdir "$DIR/csv" && psql "$BENCH_URL" -X -q <<'EOF'\n${copies}\nEOF\ntar czf "$DIR/bench_many.tgz" -C "$DIR/csv" . && times`], {
              ...process.env,
              BENCH_URL: url,
              DIR: folder,
            });
          } finally {
            await rm(folder, { recursive: true, force: true });
          }
        },
      },
    ];
    /** Our export in a child process, uploading to `endpoint`; the parent samples its temporary folder. */
    const runOurs = async (benchCase: { schema: string }, endpoint: string, bucketName: string) => {
      const tmpRoot = await mkdtemp(join(tmpdir(), 'waj-bench-tmp-'));
      try {
        const input: ChildInput = { url, endpoint, bucket: bucketName, schema: benchCase.schema, tmpRoot };
        const childArgs = [process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), '--child', JSON.stringify(input)];
        // taskset: the CPUs 0..n-1 only; os.availableParallelism() in the child then says n.
        const pinned = CPUS ? ['taskset', '-c', `0-${CPUS - 1}`, ...childArgs] : childArgs;
        const parentCpu = process.cpuUsage();
        const measured = await measuringServerCpu(withPeakDisk(tmpRoot, runCommand(pinned[0]!, pinned.slice(1), { ...process.env, LOG_LEVEL: 'WARN' })));
        const { value: ours, peakBytes } = measured.value;
        const { user, system } = process.cpuUsage(parentCpu);
        const output = JSON.parse(ours.stdout.trim().split('\n').at(-1) ?? '{}') as ChildOutput;
        return { output, peakBytes, serverCpuSeconds: measured.serverCpuSeconds, parentCpuSeconds: (user + system) / 1e6 };
      } finally {
        await rm(tmpRoot, { recursive: true, force: true });
      }
    };
    for (let runNumber = 1; runNumber <= RUNS; runNumber += 1) {
      for (const benchCase of cases.filter((c) => CASES.includes(c.id))) {
        process.stderr.write(`${benchCase.name}, run ${runNumber}: baseline...\n`);
        const baseline = await measuringServerCpu(benchCase.baseline());
        process.stderr.write(`${benchCase.name}, run ${runNumber}: ours, to s3rver...\n`);
        const ours = await runOurs(benchCase, s3.endpoint, bucket);
        process.stderr.write(`${benchCase.name}, run ${runNumber}: ours, to an S3 endpoint that discards...\n`);
        const oursOffMachine = await runOurs(benchCase, discarding.endpoint, 'discarded');
        const { output, peakBytes } = ours;
        const outcome = output.result.schemas[0];
        const ratio = baseline.value.ms / output.result.timeTakenMs;
        const ratioS3Elsewhere = baseline.value.ms / oursOffMachine.output.result.timeTakenMs;
        const peakRssMb = output.maxRssKb / 1024;
        const diskOfLargest = peakBytes / output.largestTableCompressedBytes;
        const row = {
          case: benchCase.name,
          run: runNumber,
          ourCpus: CPUS ?? availableParallelism(),
          tables: outcome?.tables,
          rows: outcome?.rows,
          csvMB: mb(outcome?.bytes ?? 0),
          tgzMB: mb(outcome?.compressedBytes ?? 0),
          largestTableCompressedMB: mb(output.largestTableCompressedBytes),
          oursSeconds: +(output.result.timeTakenMs / 1000).toFixed(2),
          baselineSeconds: +(baseline.value.ms / 1000).toFixed(2),
          ratio: +ratio.toFixed(2),
          // Where the two cores went (CPU seconds), ours: our process, the PostgreSQL server, s3rver (here, in the parent).
          oursCpuSeconds: +output.cpuSeconds.toFixed(1),
          oursServerCpuSeconds: +ours.serverCpuSeconds.toFixed(1),
          s3rverCpuSeconds: +ours.parentCpuSeconds.toFixed(1),
          // ... and the baseline's: psql, gzip or tar (bash's children), and the server.
          baselineCpuSeconds: +childrenCpuSeconds(baseline.value.stdout).toFixed(1),
          baselineServerCpuSeconds: +baseline.serverCpuSeconds.toFixed(1),
          // The same export with S3's work off this machine, as in AWS (uploads to an endpoint that discards, as the baseline's > /dev/null).
          oursS3ElsewhereSeconds: +(oursOffMachine.output.result.timeTakenMs / 1000).toFixed(2),
          ratioS3Elsewhere: +ratioS3Elsewhere.toFixed(2),
          peakRssMB: +peakRssMb.toFixed(1),
          peakTempDiskMB: mb(peakBytes),
          peakTempDiskOfLargest: +diskOfLargest.toFixed(2),
        };
        figures.push(row);
        console.log(JSON.stringify(row));
      }
    }
  } finally {
    await s3.close();
    await discarding.close();
    if (process.argv.includes('--drop')) {
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe(`DROP DATABASE IF EXISTS "${DATABASE}" WITH (FORCE)`).finally(() => admin.end());
    }
  }
  console.log(`CPUs ${availableParallelism()}; load average at the end: ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const row of figures) {
    console.log(
      `${String(row.case)}: ratio ${String(row.ratio)} (target ≥ ${TARGETS.ratio}; ${String(row.ratioS3Elsewhere)} with S3's work off this machine); peak RSS ${String(row.peakRssMB)} MB (target < ${TARGETS.peakRssMb}); ` +
        `peak temp disk ${String(row.peakTempDiskMB)} MB = ${String(row.peakTempDiskOfLargest)} × the largest table's ${String(row.largestTableCompressedMB)} MB (target ≤ ${TARGETS.tempDiskOfLargest})`,
    );
  }
  // The verdict per case: the median ratio of its runs, and the worst run's memory and disk.
  for (const name of new Set(figures.map((row) => String(row.case)))) {
    const rows = figures.filter((row) => row.case === name);
    const ratio = median(rows.map((row) => Number(row.ratio)));
    const peakRssMb = Math.max(...rows.map((row) => Number(row.peakRssMB)));
    const diskOfLargest = Math.max(...rows.map((row) => Number(row.peakTempDiskOfLargest)));
    const met = ratio >= TARGETS.ratio && peakRssMb < TARGETS.peakRssMb && diskOfLargest <= TARGETS.tempDiskOfLargest;
    console.log(
      `${name}, ${rows.length} run(s): median ratio ${ratio.toFixed(2)} (target ≥ ${TARGETS.ratio}; ${median(rows.map((row) => Number(row.ratioS3Elsewhere))).toFixed(2)} with S3's work off this machine); ` +
        `highest peak RSS ${peakRssMb} MB (target < ${TARGETS.peakRssMb}); highest peak temp disk ${diskOfLargest} × the largest table (target ≤ ${TARGETS.tempDiskOfLargest}): ${met ? 'met' : 'MISSED'}`,
    );
    missed ||= !met;
  }
  if (missed) {
    console.log('At least one target MISSED');
    process.exitCode = 1;
  }
}

if (process.argv[2] === '--child') await runChild(JSON.parse(process.argv[3] ?? '{}') as ChildInput);
else await main();
