/**
 * npm run bench:export: our export against `psql \copy | gzip` on the same ≥1 GB table.
 *
 * Builds a table in a database of its own, exports it with exportDatabase in a child process (so
 * its peak RSS is ours alone; s3rver runs here, in the parent), times the psql baseline on the
 * same table, prints both throughputs, their ratio and our peak RSS, then drops the database.
 * BENCH_ROWS changes the table size (default 4.5 million rows ≈ 1.27 GB of CSV).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { createS3Client } from '../lib/clients/s3';
import { assertExportSucceeded, exportDatabase } from '../lib/export/export-database';
import type { ExportResult } from '../lib/export/export-database';
import { createTestDatabase } from '../test/support/database';
import { startTestS3 } from '../test/support/s3';

const SCHEMA = 'bench';
const TABLE = 'licence_rows';
const ROWS = Number(process.env.BENCH_ROWS ?? 4_500_000);
const TARGETS = { ratio: 0.9, peakRssMb: 256 };

interface ChildInput {
  url: string;
  endpoint: string;
  bucket: string;
}
interface ChildOutput {
  result: ExportResult;
  maxRssKb: number;
}

/** Mixed column types and licence-like text, so the CSV compresses like the real data would. */
function buildTableSql(rows: number): string {
  return `
    CREATE SCHEMA ${SCHEMA};
    CREATE TABLE ${SCHEMA}.${TABLE} (
      id bigint PRIMARY KEY, licence_id uuid NOT NULL, licence_ref text NOT NULL, status text NOT NULL,
      amount numeric(14,2), quantity double precision, start_date date, created_at timestamptz NOT NULL,
      is_current boolean NOT NULL, notes text, data jsonb
    );
    INSERT INTO ${SCHEMA}.${TABLE}
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
    ANALYZE ${SCHEMA}.${TABLE};
  `;
}

async function runChild(input: ChildInput): Promise<void> {
  const sql = postgres(input.url, { max: 1, onnotice: () => {} });
  const s3 = createS3Client({ endpoint: input.endpoint });
  try {
    const result = await exportDatabase({ bucket: input.bucket, prefix: 'bench/', schemas: [SCHEMA] }, { sql, s3 });
    assertExportSucceeded(result);
    const output: ChildOutput = { result, maxRssKb: process.resourceUsage().maxRSS };
    process.stdout.write(`${JSON.stringify(output)}\n`);
  } finally {
    await sql.end();
    s3.destroy();
  }
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ stdout: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve({ stdout, ms: performance.now() - started }) : reject(new Error(`${command} exited with ${code}`)),
    );
  });
}

const mbPerSecond = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

async function main(): Promise<void> {
  const db = await createTestDatabase('waj_bench');
  const s3 = await startTestS3();
  try {
    process.stderr.write(`Building ${SCHEMA}.${TABLE} with ${ROWS} rows in ${db.name}...\n`);
    await db.sql.unsafe(buildTableSql(ROWS));
    const bucket = await s3.createBucket();

    // Baseline first; the table was just written, so both runs read it warm.
    const baseline = await run('bash', [
      '-o', 'pipefail', '-c',
      `psql "$BENCH_URL" -X -q -c "\\copy ${SCHEMA}.${TABLE} to stdout csv header" | gzip > /dev/null`,
    ], { ...process.env, BENCH_URL: db.url });

    const input: ChildInput = { url: db.url, endpoint: s3.endpoint, bucket };
    const ours = await run(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', JSON.stringify(input)], {
      ...process.env,
      LOG_LEVEL: 'WARN',
    });
    const { result, maxRssKb } = JSON.parse(ours.stdout.trim().split('\n').at(-1) ?? '{}') as ChildOutput;
    const outcome = result.schemas[0];
    const csvBytes = outcome?.bytes ?? 0;

    const ourRate = mbPerSecond(csvBytes, result.timeTakenMs);
    const baselineRate = mbPerSecond(csvBytes, baseline.ms);
    const ratio = ourRate / baselineRate;
    const peakRssMb = maxRssKb / 1024;
    const figures = {
      table: `${SCHEMA}.${TABLE}`,
      rows: outcome?.rows,
      csvMB: +(csvBytes / 1e6).toFixed(1),
      tgzMB: +((outcome?.compressedBytes ?? 0) / 1e6).toFixed(1),
      oursSeconds: +(result.timeTakenMs / 1000).toFixed(2),
      oursMBps: +ourRate.toFixed(1),
      baselineSeconds: +(baseline.ms / 1000).toFixed(2),
      baselineMBps: +baselineRate.toFixed(1),
      ratio: +ratio.toFixed(2),
      peakRssMB: +peakRssMb.toFixed(1),
    };
    console.log(JSON.stringify(figures, null, 2));
    console.log(
      `ratio ${figures.ratio} (target ≥ ${TARGETS.ratio}) ${ratio >= TARGETS.ratio ? 'OK' : 'MISSED'}; ` +
        `peak RSS ${figures.peakRssMB} MB (target < ${TARGETS.peakRssMb}) ${peakRssMb < TARGETS.peakRssMb ? 'OK' : 'MISSED'}; ` +
        `CSV ${figures.csvMB} MB ${csvBytes >= 1e9 ? '(≥ 1 GB)' : '(under 1 GB: raise BENCH_ROWS)'}`,
    );
    if (ratio < TARGETS.ratio || peakRssMb >= TARGETS.peakRssMb) process.exitCode = 1;
  } finally {
    await s3.close();
    await db.drop();
  }
}

if (process.argv[2] === '--child') await runChild(JSON.parse(process.argv[3] ?? '{}') as ChildInput);
else await main();
