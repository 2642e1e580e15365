-- Up Migration

-- One row per schema of an export run: the export fans out, one Lambda invocation per step, and
-- the run follows its steps (README, "How the export fans out"). A step is claimed, leased,
-- retried and expired by the same rules as a run (lib/runs/step-ledger.ts).
CREATE TABLE jobs.run_steps (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  run_id uuid NOT NULL REFERENCES jobs.runs (id) ON DELETE CASCADE,
  -- The step's place in the configured schema order: GET /jobs/runs/{id} lists steps by it.
  position integer NOT NULL CHECK (position >= 0),
  name text NOT NULL,
  status text NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  lease_expires_at timestamptz,
  lambda_request_id text,
  queued_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  progress jsonb,
  result jsonb,
  error text,
  verification jsonb,
  CONSTRAINT run_steps_one_per_name UNIQUE (run_id, name),
  CONSTRAINT run_steps_one_per_position UNIQUE (run_id, position),
  -- As for runs: a running step without a lease could never be recovered once its worker dies.
  CONSTRAINT run_steps_running_has_lease CHECK (status <> 'running' OR lease_expires_at IS NOT NULL)
);

-- Expiry sweeps and "is any step of the run still active" look steps up by run and status.
CREATE INDEX run_steps_run_status ON jobs.run_steps (run_id, status);

COMMENT ON TABLE jobs.run_steps IS 'Steps of a fanned-out run (the export: one per schema), each its own Lambda invocation.';
COMMENT ON COLUMN jobs.run_steps.result IS 'When succeeded: {tables, rows, bytes, compressedBytes, key, timeTakenMs}.';
COMMENT ON COLUMN jobs.run_steps.lease_expires_at IS 'While running: when the step worker''s Lambda timeout ends; a running step past it is dead.';
COMMENT ON COLUMN jobs.run_steps.lambda_request_id IS 'Lambda request id of the latest attempt.';
COMMENT ON COLUMN jobs.run_steps.verification IS 'Filled by the tarball verifier: {status: verified|failed, checkedAt, problems}; null until checked.';

-- Down Migration

DROP TABLE jobs.run_steps;
