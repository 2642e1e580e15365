/**
 * npm run bench:verify: how fast the verifier checks an export tarball of ≥ 1 GB of CSV, and its
 * peak memory, against GNU tools doing less (`gzip -dc | tar -xO | sha256sum`: no record counts,
 * no per-file hashes, no manifest) on the same file.
 *
 * Writes licence-like CSV (quoted commas and quotes, multi-line values, NULLs) to a temporary
 * file, counting and hashing it as the export does, packs it with the export's own tarball writer
 * (schema-tarball.ts) into an upload to s3rver (running here, in the parent), then verifies it in
 * child processes, so each peak RSS is the verifier's alone: once read from S3 (as exportVerifier
 * does) and once from a downloaded file (as `npm run verify-export` does).
 * BENCH_CSV_MB sets the CSV size (default 1100).
 */
import { randomUUID } from 'node:crypto';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../lib/clients/s3';
import { CsvRecordCounter } from '../lib/export/count-csv-records';
import type { SchemaManifest } from '../lib/export/export-schema';
import { gzipInBlocks } from '../lib/export/gzip-in-blocks';
import { startSchemaTarball } from '../lib/export/schema-tarball';
import { openTarballObject } from '../lib/verification/open-tarball-object';
import { verifyTarball } from '../lib/verification/verify-tarball';
import { startTestS3 } from '../test/support/s3';
import { runCommand } from './bench/run-command';

const CSV_BYTES = Number(process.env.BENCH_CSV_MB ?? 1100) * 1e6;
const TARGETS = { peakRssMb: 256 };

interface ChildInput {
  source: { file: string } | { endpoint: string; bucket: string; key: string };
}
interface ChildOutput {
  status: string;
  problems: string[];
  ms: number;
  maxRssKb: number;
}

async function runChild({ source }: ChildInput): Promise<void> {
  const started = performance.now();
  let body;
  if ('file' in source) body = createReadStream(source.file, { highWaterMark: 1024 * 1024 });
  else body = (await openTarballObject(createS3Client({ endpoint: source.endpoint }), source)).body;
  const result = await verifyTarball(body);
  const output: ChildOutput = {
    status: result.status,
    problems: result.problems.map((p) => p.message),
    ms: performance.now() - started,
    maxRssKb: process.resourceUsage().maxRSS,
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

/** Licence-like rows, deterministic (xorshift), about 250 bytes each. */
function* csvChunks(totalBytes: number): Generator<Buffer> {
  let x = 0x2545f491;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const words = ['Abstraction', 'licence', 'River', 'Borehole', 'spray', 'irrigation', 'from', 'the', 'northern', 'reach', 'of', 'pond,', 'at', 'point', 'SU 123 456', 'daily', 'quantity', 'water', 'stored', 'reservoir'];
  const regions = ['MD', 'SO', 'NE', 'TH', 'AN'];
  const statuses = ['current', 'superseded', 'draft', 'to_setup', 'review'];
  let written = 0;
  let id = 0;
  const header = 'id,licence_id,licence_ref,status,amount,quantity,start_date,created_at,is_current,notes,data\n';
  let lines: string[] = [header];
  let size = header.length;
  while (written + size < totalBytes) {
    id += 1;
    const r = next();
    const uuid = `${r.toString(16).padStart(8, '0')}-${(r & 0xffff).toString(16).padStart(4, '0')}-4${(id & 0xfff).toString(16).padStart(3, '0')}-a${(r >>> 20).toString(16).padStart(3, '0')}-${id.toString(16).padStart(12, '0')}`;
    let notes = '';
    if (r % 11 !== 0) {
      notes = `${words[r % 20]} ${words[(r >>> 5) % 20]} ${words[(r >>> 10) % 20]} for ${r % 500} cubic metres per day`;
      if (r % 7 === 0) notes = `"${notes} near ""Mill Lane""\nsecond line of the condition"`;
      else if (notes.includes(',')) notes = `"${notes}"`;
    }
    const line = `${id},${uuid},${regions[r % 5]}/${r % 97}/${String(r % 1000).padStart(3, '0')}/${id},${statuses[(r >>> 3) % 5]},${(r % 1000000) / 100},${(r % 10007) * 1.5},2001-${String(1 + (r % 12)).padStart(2, '0')}-${String(1 + (r % 28)).padStart(2, '0')},2020-01-01 00:00:${String(r % 60).padStart(2, '0')}+00,${r % 3 === 0 ? 't' : 'f'},${notes},"{""region"": ${r % 8}, ""purpose"": ""Spray Irrigation - Direct"", ""chargeVersion"": null}"\n`;
    lines.push(line);
    size += line.length;
    if (size >= 1024 * 1024) {
      yield Buffer.from(lines.join(''));
      written += size;
      lines = [];
      size = 0;
    }
  }
  if (lines.length > 0) yield Buffer.from(lines.join(''));
}

/** Writes the CSV file, counting and hashing it as stream-table-as-csv.ts does. */
async function writeCsv(path: string): Promise<{ rows: number; bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  const records = new CsvRecordCounter();
  let bytes = 0;
  await pipeline(
    (function* () {
      for (const chunk of csvChunks(CSV_BYTES)) {
        hash.update(chunk);
        records.scan(chunk);
        bytes += chunk.length;
        yield chunk;
      }
    })(),
    createWriteStream(path),
  );
  return { rows: records.count - 1, bytes, sha256: hash.digest('hex') };
}

async function verifyInChild(input: ChildInput): Promise<ChildOutput> {
  const { stdout } = await runCommand(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', JSON.stringify(input)], { ...process.env, LOG_LEVEL: 'WARN' });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as ChildOutput;
}

const mbPerSecond = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

async function main(): Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), 'waj-bench-verify-'));
  const s3 = await startTestS3();
  try {
    const bucket = await s3.createBucket();
    const key = 'export/bench.tgz';
    const csvPath = join(folder, 'licence_rows.csv');
    process.stderr.write(`Writing ${(CSV_BYTES / 1e6).toFixed(0)} MB of CSV...\n`);
    const csv = await writeCsv(csvPath);
    process.stderr.write('Packing it with the export\'s tarball writer into s3rver...\n');
    const tarball = await startSchemaTarball(s3.client, { bucket, key });
    // The CSV file in 1 MiB blocks, each a gzip member, as the export writes a table.
    const entry = tarball.startEntry('bench/licence_rows.csv');
    for await (const member of gzipInBlocks(createReadStream(csvPath, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>)) {
      for (const piece of member) await entry.write(piece);
    }
    await entry.end(csv.bytes);
    const now = new Date().toISOString();
    const manifest: SchemaManifest = { schema: 'bench', runId: randomUUID(), asOf: now, exportedAt: now, tables: [{ table: 'licence_rows', file: 'bench/licence_rows.csv', ...csv }] };
    await tarball.addBuffer(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), 'bench/manifest.json');
    const { compressedBytes } = await tarball.finish();
    rmSync(csvPath);
    const tgzPath = join(folder, 'bench.tgz');
    const object = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    await pipeline(object.Body as NodeJS.ReadableStream, createWriteStream(tgzPath));

    const load = loadavg().map((l) => l.toFixed(1)).join(' ');
    process.stderr.write(`Verifying (load average before: ${load})...\n`);
    const fromS3 = await verifyInChild({ source: { endpoint: s3.endpoint, bucket, key } });
    const fromFile = await verifyInChild({ source: { file: tgzPath } });
    const baseline = await runCommand('bash', ['-o', 'pipefail', '-c', `gzip -dc "$BENCH_TGZ" | tar -xOf - | sha256sum > /dev/null`], { ...process.env, BENCH_TGZ: tgzPath });

    for (const [name, result] of [['from S3', fromS3], ['from file', fromFile]] as const) {
      if (result.status !== 'verified') throw new Error(`The verifier (${name}) did not verify the tarball: ${result.problems.join('; ')}`);
    }
    const figures = {
      csvMB: +(csv.bytes / 1e6).toFixed(1),
      rows: csv.rows,
      tgzMB: +(compressedBytes / 1e6).toFixed(1),
      fromS3: { seconds: +(fromS3.ms / 1000).toFixed(2), csvMBps: +mbPerSecond(csv.bytes, fromS3.ms).toFixed(1), peakRssMB: +(fromS3.maxRssKb / 1024).toFixed(1) },
      fromFile: { seconds: +(fromFile.ms / 1000).toFixed(2), csvMBps: +mbPerSecond(csv.bytes, fromFile.ms).toFixed(1), peakRssMB: +(fromFile.maxRssKb / 1024).toFixed(1) },
      baseline: { seconds: +(baseline.ms / 1000).toFixed(2), csvMBps: +mbPerSecond(csv.bytes, baseline.ms).toFixed(1) },
      ratioFileToBaseline: +(baseline.ms / fromFile.ms).toFixed(2),
      loadAverageBefore: load,
      loadAverageAfter: loadavg().map((l) => l.toFixed(1)).join(' '),
    };
    console.log(JSON.stringify(figures, null, 2));
    const peak = Math.max(figures.fromS3.peakRssMB, figures.fromFile.peakRssMB);
    console.log(
      `peak RSS ${peak} MB (target < ${TARGETS.peakRssMb}) ${peak < TARGETS.peakRssMb ? 'OK' : 'MISSED'}; ` +
        `CSV ${figures.csvMB} MB ${csv.bytes >= 1e9 ? '(≥ 1 GB)' : '(under 1 GB: raise BENCH_CSV_MB)'}; ` +
        `from file ${figures.ratioFileToBaseline}x the speed of gzip -dc | tar -xO | sha256sum`,
    );
    if (peak >= TARGETS.peakRssMb) process.exitCode = 1;
  } finally {
    await s3.close();
    rmSync(folder, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await runChild(JSON.parse(process.argv[3] ?? '{}') as ChildInput);
else await main();
