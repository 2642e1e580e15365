import type { PendingQuery, Row, Sql } from 'postgres';
import { logger } from '../logger';
import type { TimeLimitedSettings } from '../config';
import { calendarDateIn } from '../calendar-date';
import { inTransaction } from '../clients/transaction';

export type { TimeLimitedSettings };

export { calendarDateIn } from '../calendar-date';

export interface TimeLimitedResult {
  /** Workflow rows added by this run. */
  count: number;
  timeTakenMs: number;
  /** The calendar date the rules were applied for ('YYYY-MM-DD' in settings.timeZone). */
  today: string;
}

/**
 * Key of the transaction-level advisory lock that serialises runs of this job. Any constant
 * works as long as nothing else in the database uses it; this one spells "TIMELIM" in ASCII.
 */
export const TIME_LIMITED_LOCK_KEY = 0x54494d454c494dn;

/**
 * Puts every qualifying SROC licence into the charge-version review workflow (status
 * `to_setup`), following "Time limited" in ../shared/reference/jobs.md.
 *
 * - "Today" is the calendar date in `settings.timeZone` at `now`, computed here and sent as a
 *   `date` parameter, so neither the process's nor the database's time zone matters.
 * - date_created and date_updated are `now` as UTC wall-clock time (a timestamp without time
 *   zone holding UTC). UTC because it has no repeated or missing hours at the clock changes, and
 *   it is what the replaced service wrote: it sent `new Date().toISOString()` (a `...Z` string),
 *   which PostgreSQL stores in a timestamp without time zone as UTC wall-clock time.
 * - One INSERT ... SELECT in one transaction: all rows or none.
 * - One row per licence, chosen deterministically: of the licence's qualifying charge versions,
 *   the one with the latest start_date (ties: the greatest charge_version_id); of its `current`
 *   licence versions, the latest start_date (ties: the greatest licence_version_id).
 * - Concurrent runs are serialised by a transaction-level advisory lock taken in its own
 *   statement before the INSERT. Under READ COMMITTED each statement takes a new snapshot, so a
 *   run that waited for the lock sees the rows the first run committed, and its NOT EXISTS skips
 *   those licences. ON CONFLICT DO NOTHING on the partial unique index is the last guard, for a
 *   live row written meanwhile by something other than this job, so that index never stops a run.
 */
export async function addTimeLimitedWorkflows(
  sql: Sql,
  settings: TimeLimitedSettings,
  now: Date = new Date(),
  signal?: AbortSignal,
): Promise<TimeLimitedResult> {
  const started = performance.now();
  try {
    if (!Number.isSafeInteger(settings.days) || settings.days < 0) {
      throw new RangeError(`days must be a whole number, 0 or more: ${settings.days}`);
    }
    const today = calendarDateIn(settings.timeZone, now);
    const runAt = now.toISOString();

    // Cancelled (the run was): the statement under way is cancelled on the server, and the
    // transaction rolled back whole, the commit included if it had not begun.
    const cancellable = async (query: PendingQuery<Row[]>): Promise<{ count: number }> => {
      signal?.throwIfAborted();
      const cancel = (): void => query.cancel();
      signal?.addEventListener('abort', cancel, { once: true });
      try {
        return await query;
      } finally {
        signal?.removeEventListener('abort', cancel);
      }
    };
    const count = await inTransaction(sql, async (tx) => {
      await cancellable(tx`SELECT pg_advisory_xact_lock(${TIME_LIMITED_LOCK_KEY.toString()}::bigint)`);
      // The statement reads whole tables, so hash joins are its natural plan, with a cost linear in
      // the table sizes. The planner underestimates how many purposes are due (a range filter on a
      // mostly-null column) and picks nested loops of index probes instead, about 3x slower on
      // 200,000 licences (npm run bench:time-limited). SET LOCAL: for this transaction only.
      await tx`SET LOCAL enable_nestloop = off`;
      await tx`SET LOCAL work_mem = '64MB'`;
      const inserted = await cancellable(tx`
        INSERT INTO water.charge_version_workflows
          (licence_id, licence_version_id, status, data, date_created, date_updated)
        SELECT
          chosen.licence_id,
          chosen.licence_version_id,
          'to_setup',
          jsonb_build_object('chargeVersion', NULL, 'timeLimitedChargeVersionId', chosen.charge_version_id),
          ${runAt}::timestamptz AT TIME ZONE 'UTC',
          ${runAt}::timestamptz AT TIME ZONE 'UTC'
        FROM (
          -- Every (licence, current licence version, qualifying charge version) combination, then
          -- the first per licence in the tie-break order.
          SELECT DISTINCT ON (l.licence_id) l.licence_id, lv.licence_version_id, cv.charge_version_id
          FROM water.licences l
          JOIN water.licence_versions lv
            ON lv.licence_id = l.licence_id
           AND lv.status = 'current'
          JOIN water.charge_versions cv
            ON cv.licence_id = l.licence_id
           AND cv.scheme = 'sroc'
           AND cv.status = 'current'
           AND cv.end_date IS NULL
          WHERE (l.expired_date IS NULL OR l.expired_date > ${today}::date)
            AND l.revoked_date IS NULL
            AND l.lapsed_date IS NULL
            AND EXISTS (
              SELECT 1
              FROM water.charge_elements ce
              JOIN water.charge_purposes cp ON cp.charge_element_id = ce.charge_element_id
              WHERE ce.charge_version_id = cv.charge_version_id
                AND cp.time_limited_end_date IS NOT NULL
                AND cp.time_limited_end_date < ${today}::date + ${settings.days}::integer
            )
            AND NOT EXISTS (
              SELECT 1
              FROM water.charge_version_workflows w
              WHERE w.licence_id = l.licence_id
                AND w.date_deleted IS NULL
            )
          ORDER BY l.licence_id, cv.start_date DESC, cv.charge_version_id DESC, lv.start_date DESC, lv.licence_version_id DESC
        ) AS chosen
        ON CONFLICT (licence_version_id) WHERE date_deleted IS NULL DO NOTHING
      `);
      signal?.throwIfAborted();
      return inserted.count;
    });

    const timeTakenMs = Math.round(performance.now() - started);
    logger.info('Time limited job complete', { timeTakenMs, count, today });
    return { count, timeTakenMs, today };
  } catch (error) {
    if (signal?.aborted) throw error;
    logger.error('Time limited job failed', { timeTakenMs: Math.round(performance.now() - started), error: error as Error });
    throw error;
  }
}
