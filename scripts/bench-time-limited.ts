/**
 * `npm run bench:time-limited [-- --licences N]`: seeds a database with N licences (default
 * 200,000) and their versions, charge versions, elements and purposes, copies it, then times
 * addTimeLimitedWorkflows on one copy against a row-at-a-time baseline on the other (select the
 * qualifying licences, then one INSERT per licence with no transaction, as the replaced service
 * did). Prints both times, the ratio and the rows each added; drops its databases at the end.
 *
 * `--keep` leaves the two databases in place for a closer look.
 *
 * Uses TEST_DATABASE_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres) to create
 * and drop the databases.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { readWaterTablesDdl } from './sample-database/water-tables';
import { addTimeLimitedWorkflows } from '../lib/time-limited/add-time-limited-workflows';
import { calendarDateIn } from '../lib/calendar-date';

const adminUrl = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SETTINGS = { days: 50, timeZone: 'Europe/London' };

function urlOf(database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

function connect(database: string, max = 1): Sql {
  return postgres(urlOf(database), { max, onnotice: () => {} });
}

async function admin<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    return await work(sql);
  } finally {
    await sql.end();
  }
}

/**
 * The licences, each shaped by n % 50 so every rule has licences that fail it, and by a spread of
 * purpose end dates so that about one licence in eight qualifies.
 */
async function seed(sql: Sql, licences: number, today: string): Promise<void> {
  await sql.unsafe(readWaterTablesDdl());
  await sql.begin(async (tx) => {
    await tx`
      CREATE TEMP TABLE bench ON COMMIT DROP AS
      SELECT n, n % 50 AS kind, gen_random_uuid() AS licence_id,
             'BENCH/' || lpad(n::text, 7, '0') AS licence_ref
      FROM generate_series(1, ${licences}::int) AS n
    `;
    await tx`
      INSERT INTO water.licences (licence_id, licence_ref, start_date, expired_date, revoked_date, lapsed_date)
      SELECT licence_id, licence_ref, DATE '2000-01-01' + (n % 7000),
             CASE kind WHEN 1 THEN ${today}::date - 10 WHEN 2 THEN ${today}::date WHEN 12 THEN ${today}::date + 1
                       WHEN 13 THEN ${today}::date + 900 END,
             CASE WHEN kind = 3 THEN ${today}::date - 30 WHEN kind = 14 THEN ${today}::date + 30 END,
             CASE WHEN kind = 4 THEN ${today}::date - 400 END
      FROM bench
    `;
    // A superseded version for every licence; a current one except for kind 5. Kind 15 has two current ones.
    await tx`
      INSERT INTO water.licence_versions (licence_id, issue, status, start_date, end_date)
      SELECT licence_id, 1, 'superseded', DATE '2010-04-01', DATE '2019-03-31' FROM bench
      UNION ALL
      SELECT licence_id, 2, 'current', DATE '2019-04-01', NULL FROM bench WHERE kind <> 5
      UNION ALL
      SELECT licence_id, 3, 'current', DATE '2021-04-01', NULL FROM bench WHERE kind = 15
    `;
    // An ended ALCS version for every licence, and the live one: SROC unless kind 8, ended for
    // kind 6, not current for kind 7. Kind 11 has a second qualifying SROC charge version.
    await tx`
      CREATE TEMP TABLE bench_cv ON COMMIT DROP AS
      SELECT b.n, b.kind, b.licence_id, b.licence_ref, gen_random_uuid() AS charge_version_id, v.live, v.second
      FROM bench b
      CROSS JOIN LATERAL (VALUES (false, false), (true, false), (true, true)) AS v(live, second)
      WHERE NOT v.second OR b.kind = 11
    `;
    await tx`
      INSERT INTO water.charge_versions (charge_version_id, licence_id, licence_ref, scheme, version_number, start_date, end_date, status)
      SELECT charge_version_id, licence_id, licence_ref,
             CASE WHEN live AND kind <> 8 THEN 'sroc' ELSE 'alcs' END,
             CASE WHEN NOT live THEN 1 WHEN second THEN 3 ELSE 2 END,
             CASE WHEN NOT live THEN DATE '2015-04-01' WHEN second THEN DATE '2024-04-01' ELSE DATE '2022-04-01' END,
             CASE WHEN NOT live THEN DATE '2022-03-31' WHEN kind = 6 THEN ${today}::date + 100 END,
             CASE WHEN live AND kind = 7 THEN 'superseded' ELSE 'current' END
      FROM bench_cv
    `;
    // One or two elements per charge version, one to three purposes per element.
    await tx`
      CREATE TEMP TABLE bench_ce ON COMMIT DROP AS
      SELECT cv.n, cv.live, cv.charge_version_id, gen_random_uuid() AS charge_element_id, e AS element_no
      FROM bench_cv cv CROSS JOIN LATERAL generate_series(1, 1 + (cv.n % 2)) AS e
    `;
    await tx`
      INSERT INTO water.charge_elements (charge_element_id, charge_version_id, source, loss, authorised_annual_quantity)
      SELECT charge_element_id, charge_version_id, 'non-tidal', 'medium', 1000 + n % 5000 FROM bench_ce
    `;
    // Purpose end dates on live charge versions: ~15% of licences due (some already past),
    // ~10% ending later, the rest not time-limited. Old ALCS purposes are never time-limited.
    await tx`
      INSERT INTO water.charge_purposes (charge_element_id, authorised_annual_quantity, time_limited_start_date, time_limited_end_date)
      SELECT ce.charge_element_id, 100 + p * 10, t.end_date - 3650, t.end_date
      FROM bench_ce ce
      CROSS JOIN LATERAL generate_series(1, 1 + ((ce.n + ce.element_no) % 3)) AS p
      CROSS JOIN LATERAL (
        SELECT CASE
          WHEN NOT ce.live OR p > 1 THEN NULL
          WHEN (ce.n * 7) % 100 < 15 THEN ${today}::date + ((ce.n % 59) - 10)
          WHEN (ce.n * 7) % 100 < 25 THEN ${today}::date + 50 + (ce.n % 300)
        END AS end_date
      ) AS t
    `;
    // Kind 9: a live workflow row; kind 10: only a soft-deleted one (which does not stop it).
    await tx`
      INSERT INTO water.charge_version_workflows (licence_id, licence_version_id, status, date_created, date_deleted)
      SELECT b.licence_id, lv.licence_version_id, 'review', TIMESTAMP '2025-01-06 20:15:00',
             CASE WHEN b.kind = 10 THEN TIMESTAMP '2025-02-01 09:00:00' END
      FROM bench b JOIN water.licence_versions lv ON lv.licence_id = b.licence_id AND lv.issue = 2
      WHERE b.kind IN (9, 10)
    `;
  });
  await sql`VACUUM ANALYZE`;
}

/** The replaced service's way: one query for the licences, then one INSERT each, no transaction. */
async function rowAtATime(sql: Sql, today: string, now: Date): Promise<{ count: number; selectMs: number }> {
  const started = performance.now();
  const qualifying = await sql<{ licence_id: string; licence_version_id: string; charge_version_id: string }[]>`
    SELECT DISTINCT ON (l.licence_id) l.licence_id, lv.licence_version_id, cv.charge_version_id
    FROM water.licences l
    JOIN water.licence_versions lv ON lv.licence_id = l.licence_id AND lv.status = 'current'
    JOIN water.charge_versions cv ON cv.licence_id = l.licence_id
      AND cv.scheme = 'sroc' AND cv.status = 'current' AND cv.end_date IS NULL
    WHERE (l.expired_date IS NULL OR l.expired_date > ${today}::date)
      AND l.revoked_date IS NULL AND l.lapsed_date IS NULL
      AND EXISTS (
        SELECT 1 FROM water.charge_elements ce
        JOIN water.charge_purposes cp ON cp.charge_element_id = ce.charge_element_id
        WHERE ce.charge_version_id = cv.charge_version_id
          AND cp.time_limited_end_date < ${today}::date + ${SETTINGS.days}::integer
      )
      AND NOT EXISTS (
        SELECT 1 FROM water.charge_version_workflows w WHERE w.licence_id = l.licence_id AND w.date_deleted IS NULL
      )
    ORDER BY l.licence_id, cv.start_date DESC, cv.charge_version_id DESC, lv.start_date DESC, lv.licence_version_id DESC
  `;
  const selectMs = performance.now() - started;
  const runAt = now.toISOString();
  let count = 0;
  for (const row of qualifying) {
    const data = { chargeVersion: null, timeLimitedChargeVersionId: row.charge_version_id };
    await sql`
      INSERT INTO water.charge_version_workflows (licence_id, licence_version_id, status, data, date_created, date_updated)
      VALUES (${row.licence_id}, ${row.licence_version_id}, 'to_setup', ${sql.json(data)},
              ${runAt}::timestamptz AT TIME ZONE 'UTC', ${runAt}::timestamptz AT TIME ZONE 'UTC')
    `;
    count++;
  }
  return { count, selectMs };
}

/** A digest of the rows a run added, to show both ways added the same rows. */
async function addedDigest(sql: Sql): Promise<string> {
  const [{ digest }] = await sql<[{ digest: string }]>`
    SELECT md5(coalesce(string_agg(licence_id || '/' || licence_version_id || '/' || data::text || '/' || date_created, ',' ORDER BY licence_id), '')) AS digest
    FROM water.charge_version_workflows WHERE status = 'to_setup'
  `;
  return digest;
}

/**
 * Loads every water table and index into shared buffers, so neither side pays for a cold cache
 * (a plain count(*) would not: sequential scans use a small ring buffer and skip the indexes).
 */
async function warm(sql: Sql): Promise<void> {
  await sql`CREATE EXTENSION IF NOT EXISTS pg_prewarm`;
  await sql`
    SELECT pg_prewarm(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'water' AND c.relkind IN ('r', 'i')
  `;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { licences: { type: 'string', default: '200000' }, keep: { type: 'boolean', default: false } } });
  const licences = Number(values.licences);
  if (!Number.isSafeInteger(licences) || licences < 1) throw new RangeError(`--licences must be a whole number: ${values.licences}`);

  const suffix = randomBytes(4).toString('hex');
  const ours = `waj_bench_tl_${suffix}`;
  const baseline = `waj_bench_tl_${suffix}_baseline`;
  const now = new Date();
  const today = calendarDateIn(SETTINGS.timeZone, now);

  await admin((sql) => sql.unsafe(`CREATE DATABASE "${ours}" TEMPLATE template0 ENCODING 'UTF8'`));
  try {
    let started = performance.now();
    const seeding = connect(ours);
    try {
      await seed(seeding, licences, today);
    } finally {
      await seeding.end();
    }
    console.log(`Seeded ${licences.toLocaleString('en-GB')} licences in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    started = performance.now();
    await admin((sql) => sql.unsafe(`CREATE DATABASE "${baseline}" TEMPLATE "${ours}"`));
    console.log(`Copied it to ${baseline} in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const oursSql = connect(ours);
    const baselineSql = connect(baseline);
    try {
      const [counts] = await oursSql<[Record<string, number>]>`
        SELECT (SELECT count(*)::int FROM water.licence_versions) AS licence_versions,
               (SELECT count(*)::int FROM water.charge_versions) AS charge_versions,
               (SELECT count(*)::int FROM water.charge_elements) AS charge_elements,
               (SELECT count(*)::int FROM water.charge_purposes) AS charge_purposes
      `;
      console.log(`  with ${Object.entries(counts).map(([k, v]) => `${v.toLocaleString('en-GB')} ${k}`).join(', ')}`);
      // Each side is warmed just before it runs: shared_buffers may not hold both copies, so
      // warming both up front would leave only the second one warm.
      await warm(oursSql);
      started = performance.now();
      const result = await addTimeLimitedWorkflows(oursSql, SETTINGS, now);
      const oursMs = performance.now() - started;

      await warm(baselineSql);
      started = performance.now();
      const { count: baselineCount, selectMs } = await rowAtATime(baselineSql, today, now);
      const baselineMs = performance.now() - started;

      const [oursDigest, baselineDigest] = await Promise.all([addedDigest(oursSql), addedDigest(baselineSql)]);
      const share = ((result.count / licences) * 100).toFixed(1);
      console.log(`\nToday (${SETTINGS.timeZone}): ${today}`);
      console.log(`addTimeLimitedWorkflows (one INSERT ... SELECT): ${oursMs.toFixed(0)} ms, ${result.count.toLocaleString('en-GB')} rows added (${share}% of licences)`);
      console.log(
        `row-at-a-time baseline (select, then one INSERT each): ${baselineMs.toFixed(0)} ms ` +
          `(select ${selectMs.toFixed(0)} ms, inserts ${(baselineMs - selectMs).toFixed(0)} ms, ` +
          `${((baselineMs - selectMs) / Math.max(baselineCount, 1)).toFixed(3)} ms each), ${baselineCount.toLocaleString('en-GB')} rows added`,
      );
      console.log(`Same rows added by both: ${oursDigest === baselineDigest && result.count === baselineCount ? 'yes' : 'NO'}`);
      console.log(`Ratio baseline / ours: ${(baselineMs / oursMs).toFixed(1)} (target: at least 20)`);
      if (oursDigest !== baselineDigest || result.count !== baselineCount) process.exitCode = 1;
    } finally {
      await Promise.all([oursSql.end(), baselineSql.end()]);
    }
  } finally {
    if (values.keep) {
      console.log(`Kept the bench databases (--keep): ${ours} and ${baseline}`);
    } else {
      await admin(async (sql) => {
        await sql.unsafe(`DROP DATABASE IF EXISTS "${baseline}" WITH (FORCE)`);
        await sql.unsafe(`DROP DATABASE IF EXISTS "${ours}" WITH (FORCE)`);
      });
      console.log('Dropped the bench databases.');
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
