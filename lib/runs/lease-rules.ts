import type { PendingQuery, Row, Sql } from 'postgres';

/**
 * The rules a run and a step of a run share (jobs.runs and jobs.run_steps have the same status,
 * lease_expires_at and lambda_request_id columns): when an attempt may take one over, and when
 * one that nobody carries on is given up as timed_out.
 */

/**
 * How long a run (or step) may stay `queued`. An asynchronous invocation that has not reached its
 * worker within the workers' maximumEventAge (3600 s in serverless.yml) never will: Lambda has
 * dropped it or sent it to the dead-letter queue, e.g. when every attempt failed before claiming
 * it because the database was down. Past this age it is marked timed_out when the next trigger
 * arrives. Kept above maximumEventAge (a template test checks) so one whose event may still
 * arrive is never expired.
 */
export const QUEUED_RUN_EXPIRY_SECONDS = 65 * 60;

/**
 * A running row another attempt may take over: its lease has run out, or it is running under this
 * very Lambda request. Lambda retries an asynchronous invocation with the same request id, after
 * the attempt ended: a running row of this request is the attempt that crashed (out of memory,
 * runtime exit) before recording it. A rare duplicate delivery running alongside is harmless:
 * the work is idempotent.
 */
export function takeoverAllowed(sql: Sql, requestId: string | undefined): PendingQuery<Row[]> {
  return sql`(status = 'running' AND (lease_expires_at <= now() OR lambda_request_id = ${requestId ?? null}))`;
}
