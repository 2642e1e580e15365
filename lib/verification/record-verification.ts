import type { JSONValue, Sql } from 'postgres';
import { isUuid } from '../runs/run';
import type { VerificationProblem } from './verify-tarball';

/** What is recorded on the export run's step for the schema, in `jobs.run_steps.verification`. */
export interface StepVerification {
  status: 'verified' | 'failed';
  /** ISO 8601, when the check finished. */
  checkedAt: string;
  problems: VerificationProblem[];
}

export type RecordOutcome = 'recorded' | 'no-such-step';

/**
 * Records a tarball's verification on the step of export run `runId` that exported `schema`
 * (the step's name is the schema). A later check (a re-upload, a retry) replaces an earlier one.
 */
export async function recordVerificationOnStep(
  sql: Sql,
  step: { runId: string; schema: string },
  verification: StepVerification,
): Promise<RecordOutcome> {
  // A malformed id in someone's metadata would otherwise fail the cast and, with it, the invocation.
  if (!isUuid(step.runId)) return 'no-such-step';
  const updated = await sql`
    UPDATE jobs.run_steps SET verification = ${sql.json(verification as unknown as JSONValue)}
    WHERE run_id = ${step.runId} AND name = ${step.schema}
    RETURNING id`;
  return updated.length > 0 ? 'recorded' : 'no-such-step';
}
