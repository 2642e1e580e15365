/**
 * npm run bench:restore: our restore (npm run restore: every CSV checked against its manifest as
 * it loads) against `pg_restore -j 2` of a `pg_dump -Fd -j 2` of the same data, each into an
 * empty database of its own, in the same run. Prints both times, their ratio (theirs / ours), our
 * peak RSS and where the CPU went; `met` or `MISSED` on the median ratio of the paired runs and
 * the worst run's peak RSS; exit code 1 if missed.
 *
 * The data (three schemas, about 1.2 GB of CSV: mixed column types, primary keys, unique
 * constraints, secondary indexes with an expression and a partial one, foreign keys within a
 * schema and across schemas, identity and serial columns) is built once into the database
 * `waj_bench_restore_src` and kept (about a minute to build); `--rebuild` builds it again,
 * `--drop` drops it at the end, `--keep` keeps the tarballs and the dump (to look into a figure).
 * Each invocation exports it through the real export path (exportThroughSteps, to s3rver) and
 * copies the tarballs to a local folder, and dumps it with `pg_dump -Fd -j 2` (both timed, not
 * judged): each restore then reads local files. Our restore runs in a child process
 * (scripts/bench/restore-child.ts, started as `npm run restore` starts: Node.js running its bundle,
 * scripts/run-bundled.mjs, built before the first run; its start included, loading only what the
 * restore loads), so its time, CPU and peak RSS are its own. pg_restore
 * leaves statistics to the user: `vacuumdb --analyze-only` after it is timed apart and shown in a
 * second ratio (the same end state as ours, which runs ANALYZE), not judged.
 *
 * BENCH_ROWS: licences in the data (default 1,000,000 ≈ 1.19 GB of CSV; the other tables scale
 * with it); BENCH_RUNS: paired runs (default 3); BENCH_PARALLEL: our --parallel and pg_restore's
 * -j (default 2).
 */
import './quiet-sdk-warning';
import './bench/quiet-job-logs';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import postgres from 'postgres';
import { connectDatabase } from '../lib/clients/database';
import { assertEveryStepSucceeded, exportThroughSteps } from '../test/support/export-steps';
import { adminUrl } from '../test/support/database';
import { startTestS3 } from '../test/support/s3';
import { postgresCpuSeconds } from './bench/postgres-cpu';
import type { RestoreChildInput, RestoreChildOutput } from './bench/restore-child';
import { runCommand } from './bench/run-command';

const SOURCE_DATABASE = 'waj_bench_restore_src';
const THEIRS_DATABASE = 'waj_bench_restore_theirs';
const OURS_DATABASE = 'waj_bench_restore_ours';
const SCHEMAS = ['bench_licensing', 'bench_charging', 'bench_crm'];
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? 2);
const TARGETS = { ratio: 1.0, peakRssMb: 256 };
/** Our side: a process that loads what `npm run restore` loads, and not the bench's own modules. */
const RESTORE_CHILD = fileURLToPath(new URL('./bench/restore-child.ts', import.meta.url));
/** How `npm run restore` starts its script (bundled first when stale; the bench builds before timing). */
const RUN_BUNDLED = fileURLToPath(new URL('./run-bundled.mjs', import.meta.url));

/** One side of a paired run: its wall time, and the CPU seconds of its client and of the server. */
interface Side {
  seconds: number;
  cpuSeconds: number;
  serverCpuSeconds: number;
}
interface TheirSide extends Side {
  /** `vacuumdb --analyze-only` after pg_restore: statistics, which our restore ends with (its ANALYZE) and pg_restore leaves to the user. */
  analyzeSeconds: number;
}
interface OurSide extends Side {
  /** The restore's own time, without starting Node.js and compiling the TypeScript. */
  restoreSeconds: number;
  peakRssMB: number;
  phases: string;
}

/**
 * Licensing-like data in three schemas. Tables are filled first and their keys and indexes built
 * after (much faster to build); sequences are set past the rows as an application would leave them.
 */
function buildSql(n: number): string {
  const words = `(array['Abstraction','Licence','River','Borehole','Spray','irrigation','from','the','northern','reach','of','"Mill Lane"','pond,','at','point','grid','reference','SU 123 456','daily','quantity'])`;
  const verbs = `(array['water','is','taken','for','general','agriculture','and','stored','in','a','reservoir','before','use','on','the','farm','fields','each','summer','season'])`;
  return `
    DROP SCHEMA IF EXISTS bench_crm, bench_charging, bench_licensing CASCADE;
    CREATE SCHEMA bench_licensing;
    CREATE SCHEMA bench_charging;
    CREATE SCHEMA bench_crm;

    CREATE TABLE bench_licensing.regions (
      id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      code text NOT NULL UNIQUE,
      name text NOT NULL
    );
    INSERT INTO bench_licensing.regions (code, name)
    SELECT code, name FROM unnest(array['AN','MD','NE','NW','SO','SW','TH','EA'],
      array['Anglian','Midlands','North East','North West','Southern','South West','Thames','Wales']) AS r(code, name);

    CREATE TABLE bench_licensing.licences (
      id bigint GENERATED BY DEFAULT AS IDENTITY,
      licence_id uuid NOT NULL,
      licence_ref text NOT NULL,
      region_id integer NOT NULL,
      status text NOT NULL,
      start_date date NOT NULL,
      expiry_date date,
      created_at timestamptz NOT NULL,
      is_current boolean NOT NULL,
      notes text,
      metadata jsonb
    );
    INSERT INTO bench_licensing.licences
    SELECT i, md5('licence' || i)::uuid,
      format('%s/%s/%s/%s', (array['MD','SO','NE','TH','AN'])[1 + i % 5], i % 97, lpad((i % 1000)::text, 3, '0'), i),
      1 + i % 8,
      (array['current','superseded','draft','to_setup','review'])[1 + (i * 7) % 5],
      date '1990-01-01' + (i % 12000)::int,
      CASE WHEN i % 4 = 0 THEN NULL ELSE date '2025-01-01' + (i % 4000)::int END,
      timestamptz '2015-01-01 00:00:00+00' + i * interval '97 seconds',
      i % 3 <> 0,
      CASE WHEN i % 11 = 0 THEN NULL ELSE concat_ws(' ', ${words}[1 + i % 20], ${verbs}[1 + (i * 3) % 20], ${words}[1 + (i * 13) % 20], 'for', i % 500, 'cubic metres per day') END,
      jsonb_build_object('chargeVersion', NULL, 'region', i % 8,
        'purpose', (array['Spray Irrigation - Direct','Trickle Irrigation','General Farming & Domestic','Vegetable Washing'])[1 + i % 4],
        'source', 'Surface water: ' || i % 31, 'twoPartTariff', i % 7 = 0)
    FROM generate_series(1::bigint, ${n}::bigint) AS i;

    CREATE TABLE bench_licensing.licence_versions (
      id bigserial,
      licence_id bigint NOT NULL,
      version_number integer NOT NULL,
      status text NOT NULL,
      start_date date NOT NULL,
      end_date date,
      amount numeric(14,2),
      created_at timestamptz NOT NULL,
      is_latest boolean NOT NULL,
      notes text
    );
    INSERT INTO bench_licensing.licence_versions
    SELECT i, 1 + (i - 1) % ${n}, 1 + (i - 1) / ${n},
      (array['current','superseded','draft'])[1 + i % 3],
      date '1995-01-01' + (i % 10000)::int,
      CASE WHEN i % 3 = 0 THEN NULL ELSE date '2030-01-01' + (i % 3000)::int END,
      round(((i * 7919) % 10000000)::numeric / 100, 2),
      timestamptz '2016-01-01 00:00:00+00' + i * interval '41 seconds',
      i > ${n} * 3 / 2,
      CASE WHEN i % 5 = 0 THEN NULL ELSE concat_ws(' ', 'Varied', ${verbs}[1 + i % 20], ${words}[1 + (i * 7) % 20], 'on request of the holder, ref', i) END
    FROM generate_series(1::bigint, ${Math.floor(n * 2.5)}::bigint) AS i;

    CREATE TABLE bench_licensing.points (
      id serial,
      licence_id bigint NOT NULL,
      ngr text NOT NULL,
      description text,
      latitude numeric(9,6) NOT NULL,
      longitude numeric(9,6) NOT NULL
    );
    INSERT INTO bench_licensing.points
    SELECT i, 1 + (i * 5) % ${n}, format('SU %s %s', lpad((i % 1000)::text, 3, '0'), lpad(((i * 7) % 1000)::text, 3, '0')),
      ${words}[1 + i % 20] || ' at ' || ${verbs}[1 + (i * 3) % 20],
      round((50 + (i % 50000) / 10000.0)::numeric, 6), round((-5 + (i % 70000) / 10000.0)::numeric, 6)
    FROM generate_series(1, ${Math.floor(n / 5)}) AS i;

    CREATE TABLE bench_charging.charge_versions (
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      licence_id bigint NOT NULL,
      start_date date NOT NULL,
      end_date date,
      status text NOT NULL,
      billing_account_ref text,
      change_reason text,
      scheme text NOT NULL,
      created_at timestamptz NOT NULL
    );
    INSERT INTO bench_charging.charge_versions
    SELECT md5('charge version' || i)::uuid, 1 + (i * 3) % ${n},
      date '2008-04-01' + (i % 6000)::int,
      CASE WHEN i % 2 = 0 THEN NULL ELSE date '2026-03-31' + (i % 1000)::int END,
      (array['current','superseded','draft'])[1 + i % 3],
      format('%s%s', (array['A','B','E','N','S','T','Y'])[1 + i % 7], lpad((i % 99999999)::text, 8, '0')),
      (array['Licence holder and billing contact changed','New licence','Strategic review of charges (SRoC)','Major change','Succession to a licence'])[1 + i % 5],
      (array['alcs','sroc'])[1 + i % 2],
      timestamptz '2018-01-01 00:00:00+00' + i * interval '53 seconds'
    FROM generate_series(1, ${n}) AS i;

    CREATE TABLE bench_charging.charge_elements (
      id bigint GENERATED BY DEFAULT AS IDENTITY,
      charge_version_id uuid NOT NULL,
      authorised_annual_quantity numeric(12,3) NOT NULL,
      billable_annual_quantity numeric(12,3),
      season text NOT NULL,
      source text NOT NULL,
      loss text NOT NULL,
      is_section_127 boolean NOT NULL,
      time_limited_start date,
      purpose jsonb NOT NULL,
      description text
    );
    INSERT INTO bench_charging.charge_elements
    SELECT i, md5('charge version' || (1 + i % ${n}))::uuid,
      round(((i * 104729) % 1000000)::numeric / 1000, 3),
      CASE WHEN i % 4 = 0 THEN NULL ELSE round(((i * 7919) % 1000000)::numeric / 1000, 3) END,
      (array['summer','winter','all year'])[1 + i % 3],
      (array['unsupported','supported','tidal','kielder'])[1 + i % 4],
      (array['high','medium','low','very low'])[1 + (i * 3) % 4],
      i % 9 = 0,
      CASE WHEN i % 6 = 0 THEN date '2020-04-01' + (i % 2000)::int END,
      jsonb_build_object('primary', (array['A','I','W','M'])[1 + i % 4], 'secondary', (array['AGR','ELC','WAT','IND','MIN'])[1 + i % 5],
        'use', (array[400, 420, 600, 620, 180])[1 + i % 5], 'description', ${words}[1 + (i * 11) % 20] || ' ' || ${verbs}[1 + i % 20]),
      CASE WHEN i % 3 = 0 THEN NULL ELSE concat_ws(' ', 'Element', i, ${verbs}[1 + (i * 17) % 20], ${words}[1 + (i * 5) % 20]) END
    FROM generate_series(1::bigint, ${Math.floor(n * 1.5)}::bigint) AS i;

    CREATE TABLE bench_charging.billing_runs (
      id serial PRIMARY KEY,
      region_id integer NOT NULL,
      batch_type text NOT NULL,
      status text NOT NULL,
      created_at timestamptz NOT NULL
    );
    INSERT INTO bench_charging.billing_runs (region_id, batch_type, status, created_at)
    SELECT 1 + i % 8, (array['annual','supplementary','two_part_tariff'])[1 + i % 3], (array['sent','empty','error','cancel'])[1 + i % 4],
      timestamptz '2019-04-01 00:00:00+00' + i * interval '1 day'
    FROM generate_series(1, 2000) AS i;

    CREATE TABLE bench_crm.companies (
      id uuid NOT NULL,
      name text NOT NULL,
      company_number text,
      type text NOT NULL,
      created_at timestamptz NOT NULL
    );
    INSERT INTO bench_crm.companies
    SELECT md5('company' || i)::uuid, format('%s %s %s', ${words}[1 + i % 20], ${verbs}[1 + (i * 7) % 20], (array['Ltd','Farms','plc','& Sons','Estates'])[1 + i % 5]),
      CASE WHEN i % 3 = 0 THEN NULL ELSE lpad(i::text, 8, '0') END,
      (array['organisation','person'])[1 + i % 2],
      timestamptz '2017-01-01 00:00:00+00' + i * interval '613 seconds'
    FROM generate_series(1, ${Math.floor(n / 10)}) AS i;

    CREATE TABLE bench_crm.contacts (
      id bigint GENERATED ALWAYS AS IDENTITY,
      company_id uuid NOT NULL,
      first_name text NOT NULL,
      last_name text NOT NULL,
      email text,
      is_primary boolean NOT NULL,
      created_at timestamptz NOT NULL
    );
    INSERT INTO bench_crm.contacts OVERRIDING SYSTEM VALUE
    SELECT i, md5('company' || (1 + i % ${Math.floor(n / 10)}))::uuid,
      (array['Anne','Bob','Carys','Dafydd','Emma','Farid','Gita','Harry'])[1 + i % 8],
      (array['Smith','Jones','Williams','Taylor','Brown','Davies','Evans','Thomas','Johnson'])[1 + (i * 5) % 9],
      CASE WHEN i % 6 = 0 THEN NULL ELSE format('Contact.%s@Example.com', i) END,
      i % 4 = 0,
      timestamptz '2017-06-01 00:00:00+00' + i * interval '127 seconds'
    FROM generate_series(1::bigint, ${Math.floor(n / 2)}::bigint) AS i;

    CREATE TABLE bench_crm.documents (
      id bigint GENERATED BY DEFAULT AS IDENTITY,
      licence_id bigint NOT NULL,
      company_id uuid NOT NULL,
      document_ref text NOT NULL,
      start_date date NOT NULL,
      details jsonb
    );
    INSERT INTO bench_crm.documents
    SELECT i, 1 + (i * 2) % ${n}, md5('company' || (1 + (i * 3) % ${Math.floor(n / 10)}))::uuid, format('DOC/%s/%s', i % 97, i),
      date '2000-01-01' + (i % 9000)::int,
      CASE WHEN i % 5 = 0 THEN NULL ELSE jsonb_build_object('role', (array['licenceHolder','billing','returnsTo'])[1 + i % 3], 'signed', i % 2 = 0, 'pages', i % 40) END
    FROM generate_series(1::bigint, ${Math.floor(n / 2)}::bigint) AS i;

    ALTER TABLE bench_licensing.licences ADD PRIMARY KEY (id), ADD CONSTRAINT licences_licence_id_key UNIQUE (licence_id);
    CREATE INDEX licences_region_id_idx ON bench_licensing.licences (region_id);
    CREATE INDEX licences_lower_ref_idx ON bench_licensing.licences (lower(licence_ref));
    CREATE INDEX licences_current_expiry_idx ON bench_licensing.licences (expiry_date) WHERE is_current;
    ALTER TABLE bench_licensing.licence_versions ADD PRIMARY KEY (id), ADD CONSTRAINT licence_versions_number_key UNIQUE (licence_id, version_number);
    CREATE INDEX licence_versions_start_date_idx ON bench_licensing.licence_versions (start_date);
    ALTER TABLE bench_licensing.points ADD PRIMARY KEY (id);
    CREATE INDEX points_licence_id_idx ON bench_licensing.points (licence_id);
    ALTER TABLE bench_charging.charge_versions ADD PRIMARY KEY (id);
    CREATE INDEX charge_versions_licence_id_idx ON bench_charging.charge_versions (licence_id);
    ALTER TABLE bench_charging.charge_elements ADD PRIMARY KEY (id);
    CREATE INDEX charge_elements_charge_version_id_idx ON bench_charging.charge_elements (charge_version_id);
    ALTER TABLE bench_crm.companies ADD PRIMARY KEY (id), ADD CONSTRAINT companies_company_number_key UNIQUE (company_number);
    ALTER TABLE bench_crm.contacts ADD PRIMARY KEY (id);
    CREATE INDEX contacts_lower_email_idx ON bench_crm.contacts (lower(email));
    CREATE INDEX contacts_company_id_idx ON bench_crm.contacts (company_id);
    ALTER TABLE bench_crm.documents ADD PRIMARY KEY (id);
    CREATE INDEX documents_company_id_idx ON bench_crm.documents (company_id);

    ALTER TABLE bench_licensing.licences ADD CONSTRAINT licences_region_id_fkey FOREIGN KEY (region_id) REFERENCES bench_licensing.regions (id);
    ALTER TABLE bench_licensing.licence_versions ADD CONSTRAINT licence_versions_licence_id_fkey FOREIGN KEY (licence_id) REFERENCES bench_licensing.licences (id) ON DELETE CASCADE;
    ALTER TABLE bench_licensing.points ADD CONSTRAINT points_licence_id_fkey FOREIGN KEY (licence_id) REFERENCES bench_licensing.licences (id);
    ALTER TABLE bench_charging.charge_versions ADD CONSTRAINT charge_versions_licence_id_fkey FOREIGN KEY (licence_id) REFERENCES bench_licensing.licences (id);
    ALTER TABLE bench_charging.charge_elements ADD CONSTRAINT charge_elements_charge_version_id_fkey FOREIGN KEY (charge_version_id) REFERENCES bench_charging.charge_versions (id) ON DELETE CASCADE;
    ALTER TABLE bench_charging.billing_runs ADD CONSTRAINT billing_runs_region_id_fkey FOREIGN KEY (region_id) REFERENCES bench_licensing.regions (id);
    ALTER TABLE bench_crm.contacts ADD CONSTRAINT contacts_company_id_fkey FOREIGN KEY (company_id) REFERENCES bench_crm.companies (id);
    ALTER TABLE bench_crm.documents ADD CONSTRAINT documents_company_id_fkey FOREIGN KEY (company_id) REFERENCES bench_crm.companies (id),
      ADD CONSTRAINT documents_licence_id_fkey FOREIGN KEY (licence_id) REFERENCES bench_licensing.licences (id);

    SELECT setval(pg_get_serial_sequence('bench_licensing.licences', 'id'), ${n});
    SELECT setval(pg_get_serial_sequence('bench_licensing.licence_versions', 'id'), ${Math.floor(n * 2.5)});
    SELECT setval(pg_get_serial_sequence('bench_licensing.points', 'id'), ${Math.floor(n / 5)});
    SELECT setval(pg_get_serial_sequence('bench_charging.charge_elements', 'id'), ${Math.floor(n * 1.5)});
    SELECT setval(pg_get_serial_sequence('bench_crm.contacts', 'id'), ${Math.floor(n / 2)});
    SELECT setval(pg_get_serial_sequence('bench_crm.documents', 'id'), ${Math.floor(n / 2)});
    COMMENT ON SCHEMA bench_crm IS 'built with ${n} rows';
  `;
}

const databaseUrl = (name: string): string => {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
};

async function asAdmin<T>(work: (admin: postgres.Sql) => Promise<T>): Promise<T> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

/** An empty database under `name` (dropped first if a killed run left it). */
async function createEmptyDatabase(name: string): Promise<string> {
  await asAdmin(async (admin) => {
    await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.unsafe(`CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8'`);
  });
  return databaseUrl(name);
}

const dropDatabase = (name: string): Promise<void> => asAdmin(async (admin) => void (await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)));

async function prepareSource(): Promise<string> {
  const url = databaseUrl(SOURCE_DATABASE);
  await asAdmin(async (admin) => {
    const exists = await admin`SELECT 1 FROM pg_database WHERE datname = ${SOURCE_DATABASE}`;
    if (exists.length > 0 && process.argv.includes('--rebuild')) await admin.unsafe(`DROP DATABASE "${SOURCE_DATABASE}" WITH (FORCE)`);
    if (exists.length === 0 || process.argv.includes('--rebuild')) await admin.unsafe(`CREATE DATABASE "${SOURCE_DATABASE}" TEMPLATE template0 ENCODING 'UTF8'`);
  });
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [built] = await sql<{ comment: string | null }[]>`SELECT obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = 'bench_crm'`;
    if (built?.comment !== `built with ${ROWS} rows`) {
      process.stderr.write(`Building the bench data (${ROWS} licences) in ${SOURCE_DATABASE}; kept for later runs...\n`);
      const started = performance.now();
      await sql.unsafe(buildSql(ROWS));
      // Hint bits set and statistics taken once here, so neither dump nor export pays for them.
      await sql.unsafe('VACUUM (ANALYZE)');
      process.stderr.write(`  built in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
    }
  } finally {
    await sql.end();
  }
  return url;
}

/** Rows and a checksum of every row's text per table, plus every index, constraint and sequence position: what both restores must end with. */
async function contentsOf(url: string): Promise<Map<string, string>> {
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    const contents = new Map<string, string>();
    const tables = await sql<{ schema: string; name: string }[]>`
      SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY(${SCHEMAS}::text[]) AND c.relkind = 'r' ORDER BY 1, 2`;
    await Promise.all(
      [0, 1].map(async (half) => {
        for (const { schema, name } of tables.filter((_, k) => k % 2 === half)) {
          const [row] = await sql.unsafe<{ rows: string; checksum: string }[]>(
            `SELECT count(*)::text AS rows, coalesce(sum(hashtext(t::text)::bigint), 0)::text AS checksum FROM "${schema}"."${name}" t`,
          );
          contents.set(`${schema}.${name}`, `${row?.rows} rows, checksum ${row?.checksum}`);
        }
      }),
    );
    const structure = await sql<{ what: string; definition: string }[]>`
      SELECT 'index ' || indexname AS what, indexdef AS definition FROM pg_indexes WHERE schemaname = ANY(${SCHEMAS}::text[])
      UNION ALL
      SELECT 'constraint ' || conname, pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = ANY(${SCHEMAS}::text[]) AND c.contype <> 'n'
      UNION ALL
      SELECT 'sequence ' || schemaname || '.' || sequencename, coalesce(last_value::text, 'unset') FROM pg_sequences WHERE schemaname = ANY(${SCHEMAS}::text[])`;
    for (const { what, definition } of structure) contents.set(what, definition);
    return contents;
  } finally {
    await sql.end();
  }
}

/** Throws naming what differs between the source and a restored database. */
function assertSameContents(source: Map<string, string>, restored: Map<string, string>, who: string): void {
  const differences = [...new Set([...source.keys(), ...restored.keys()])].filter((key) => source.get(key) !== restored.get(key));
  if (differences.length > 0) {
    throw new Error(`${who}'s database differs from the source: ${differences.slice(0, 5).map((key) => `${key}: ${source.get(key) ?? 'absent'} / ${restored.get(key) ?? 'absent'}`).join('; ')}`);
  }
}

/** Exports the schemas through the real export path to s3rver, then copies the tarballs to `folder`. */
async function exportToFolder(url: string, folder: string): Promise<{ ms: number; csvBytes: number; tgzBytes: number }> {
  const s3 = await startTestS3();
  const sql = connectDatabase(url, { max: availableParallelism() + 1 });
  try {
    const bucket = await s3.createBucket();
    const result = await exportThroughSteps({ bucket, prefix: 'bench/', schemas: SCHEMAS }, { sql, s3: s3.client });
    assertEveryStepSucceeded(result);
    await mkdir(folder, { recursive: true });
    for (const schema of SCHEMAS) {
      const object = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: `bench/${schema}.tgz` }));
      await pipeline(object.Body as Readable, createWriteStream(join(folder, `${schema}.tgz`)));
    }
    return {
      ms: result.timeTakenMs,
      csvBytes: result.schemas.reduce((sum, s) => sum + (s.bytes ?? 0), 0),
      tgzBytes: result.schemas.reduce((sum, s) => sum + (s.compressedBytes ?? 0), 0),
    };
  } finally {
    await sql.end();
    await s3.close();
  }
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** The PostgreSQL servers' CPU seconds while `work` runs (its backends reaped before the second reading). */
async function measuringServerCpu<T>(work: () => Promise<T>): Promise<{ value: T; serverCpuSeconds: number }> {
  const before = postgresCpuSeconds();
  const value = await work();
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { value, serverCpuSeconds: postgresCpuSeconds() - before };
}

/** The CPU time of a bash script's children, from the `times` builtin's second line ("0m1.5s 0m0.2s"). */
function childrenCpuSeconds(timesOutput: string): number {
  const line = timesOutput.trim().split('\n').at(-1) ?? '';
  return [...line.matchAll(/(\d+)m([\d.]+)s/g)].reduce((total, [, minutes, seconds]) => total + Number(minutes) * 60 + Number(seconds), 0);
}

/** The middle value (the mean of the two middle ones for an even count). */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const seconds = (ms: number): number => +(ms / 1000).toFixed(1);
const mb = (bytes: number): number => +(bytes / 1e6).toFixed(1);
const loads = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

/** Each side starts from the same state: no dirty buffers left by the side before it to write out. */
const checkpoint = (): Promise<void> => asAdmin(async (admin) => void (await admin.unsafe('CHECKPOINT')));

async function main(): Promise<void> {
  const sourceUrl = await prepareSource();
  const work = await mkdtemp(join(tmpdir(), 'waj-bench-restore-'));
  const tarballs = join(work, 'tarballs');
  const dump = join(work, 'dump');
  const figures: Record<string, number | string>[] = [];
  try {
    process.stderr.write('Reading the source (rows, checksums, indexes, constraints, sequences)...\n');
    const expected = await contentsOf(sourceUrl);
    process.stderr.write('Exporting it through the export path (to s3rver, then to a local folder)...\n');
    const exported = await exportToFolder(sourceUrl, tarballs);
    process.stderr.write(`Dumping it with pg_dump -Fd -j ${PARALLEL}...\n`);
    const schemaArgs = SCHEMAS.map((schema) => `-n ${schema}`).join(' ');
    const dumped = await runCommand('bash', ['-c', `pg_dump -Fd -j ${PARALLEL} ${schemaArgs} -f "$DUMP" "$SOURCE_URL"`], { ...process.env, DUMP: dump, SOURCE_URL: sourceUrl });
    console.log(
      JSON.stringify({
        csvMB: mb(exported.csvBytes),
        tarballsMB: mb(exported.tgzBytes),
        exportSeconds: seconds(exported.ms),
        dumpMB: mb(await folderBytes(dump)),
        pgDumpSeconds: seconds(dumped.ms),
      }),
    );

    // Each side's database is checked and dropped before the other side starts: left in place, its
    // tables would be vacuumed and analyzed by autovacuum (pg_restore's have no statistics) while
    // the other side runs, on the same two cores.
    const checkedAndDropped = async (database: string, side: string): Promise<void> => {
      process.stderr.write(`  checking that ${side}'s database holds the source's rows, indexes, constraints and sequences...\n`);
      assertSameContents(expected, await contentsOf(databaseUrl(database)), side);
      await dropDatabase(database);
    };
    const theirs = async (): Promise<TheirSide> => {
      const url = await createEmptyDatabase(THEIRS_DATABASE);
      await checkpoint();
      const env = { ...process.env, TARGET_URL: url, DUMP: dump };
      const measured = await measuringServerCpu(() => runCommand('bash', ['-c', `pg_restore -j ${PARALLEL} --exit-on-error -d "$TARGET_URL" "$DUMP" && times`], env));
      const analyzed = await runCommand('bash', ['-c', `vacuumdb --analyze-only -q -j ${PARALLEL} -d "$TARGET_URL"`], env);
      await checkedAndDropped(THEIRS_DATABASE, 'pg_restore');
      return {
        seconds: measured.value.ms / 1000,
        cpuSeconds: childrenCpuSeconds(measured.value.stdout),
        serverCpuSeconds: measured.serverCpuSeconds,
        analyzeSeconds: analyzed.ms / 1000,
      };
    };
    const ours = async (): Promise<OurSide> => {
      const url = await createEmptyDatabase(OURS_DATABASE);
      await checkpoint();
      const input: RestoreChildInput = { folder: tarballs, url, parallelism: PARALLEL };
      const { DATABASE_URL: _exportDatabase, ...env } = process.env;
      const measured = await measuringServerCpu(() =>
        runCommand(process.execPath, [RUN_BUNDLED, RESTORE_CHILD, JSON.stringify(input)], { ...env, LOG_LEVEL: 'WARN' }),
      );
      const output = JSON.parse(measured.value.stdout.trim().split('\n').at(-1) ?? '{}') as RestoreChildOutput;
      await checkedAndDropped(OURS_DATABASE, 'our restore');
      const phases = output.phases.map((p, k) => (k + 1 < output.phases.length ? `${p.phase} ${(output.phases[k + 1]!.atSeconds - p.atSeconds).toFixed(1)} s` : '')).filter(Boolean).join(', ');
      return {
        seconds: measured.value.ms / 1000,
        restoreSeconds: output.timeTakenMs / 1000,
        cpuSeconds: output.cpuSeconds,
        serverCpuSeconds: measured.serverCpuSeconds,
        peakRssMB: output.maxRssKb / 1024,
        phases,
      };
    };

    // Built now, not during the first run (as `npm run restore` builds it once, at its first start).
    await runCommand(process.execPath, [RUN_BUNDLED, '--build-only', RESTORE_CHILD]);
    for (let run = 1; run <= RUNS; run += 1) {
      // Alternate which goes first, so neither always inherits the other's after-effects (cache, WAL recycling).
      const oursFirst = run % 2 === 0;
      const loadBefore = loads();
      process.stderr.write(`Run ${run}: ${oursFirst ? 'ours, then pg_restore' : 'pg_restore, then ours'} (load average ${loadBefore})...\n`);
      let baseline: TheirSide;
      let our: OurSide;
      if (oursFirst) {
        our = await ours();
        baseline = await theirs();
      } else {
        baseline = await theirs();
        our = await ours();
      }
      const row = {
        run,
        first: oursFirst ? 'ours' : 'pg_restore',
        pgRestoreSeconds: +baseline.seconds.toFixed(1),
        oursSeconds: +our.seconds.toFixed(1),
        ratio: +(baseline.seconds / our.seconds).toFixed(2),
        // Not judged: the same end state (statistics on every table) on both sides.
        pgRestoreAnalyzeSeconds: +baseline.analyzeSeconds.toFixed(1),
        ratioWithAnalyze: +((baseline.seconds + baseline.analyzeSeconds) / our.seconds).toFixed(2),
        peakRssMB: +our.peakRssMB.toFixed(1),
        // Where the two cores went, in CPU seconds: the client (pg_restore and its workers; our process) and the server.
        pgRestoreCpuSeconds: +baseline.cpuSeconds.toFixed(1),
        pgRestoreServerCpuSeconds: +baseline.serverCpuSeconds.toFixed(1),
        oursCpuSeconds: +our.cpuSeconds.toFixed(1),
        oursServerCpuSeconds: +our.serverCpuSeconds.toFixed(1),
        // Ours from inside (without starting Node and compiling TypeScript), by phase.
        oursRestoreSeconds: +our.restoreSeconds.toFixed(1),
        oursPhases: our.phases,
        loadAverageBefore: loadBefore,
        loadAverageAfter: loads(),
      };
      figures.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    if (process.argv.includes('--keep')) process.stderr.write(`Kept the tarballs and the dump in ${work}\n`);
    else await rm(work, { recursive: true, force: true });
    await dropDatabase(THEIRS_DATABASE).catch(() => {});
    await dropDatabase(OURS_DATABASE).catch(() => {});
    if (process.argv.includes('--drop')) await dropDatabase(SOURCE_DATABASE);
  }

  const ratio = median(figures.map((row) => Number(row.ratio)));
  const peakRssMb = Math.max(...figures.map((row) => Number(row.peakRssMB)));
  const met = ratio >= TARGETS.ratio && peakRssMb < TARGETS.peakRssMb;
  console.log(`CPUs ${availableParallelism()}; load average at the end: ${loads()}`);
  for (const row of figures) {
    console.log(
      `run ${row.run}: pg_restore -j ${PARALLEL} ${row.pgRestoreSeconds} s, ours ${row.oursSeconds} s: ratio ${row.ratio} ` +
        `(${row.ratioWithAnalyze} with vacuumdb --analyze-only after pg_restore, ${row.pgRestoreAnalyzeSeconds} s); our peak RSS ${row.peakRssMB} MB`,
    );
  }
  console.log(
    `${figures.length} run(s): median ratio ${ratio.toFixed(2)} (target ≥ ${TARGETS.ratio}); highest peak RSS ${peakRssMb} MB (target < ${TARGETS.peakRssMb}): ${met ? 'met' : 'MISSED'}`,
  );
  if (!met) process.exitCode = 1;
}

await main();
