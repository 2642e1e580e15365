-- Up Migration

-- The one schema this project owns. node-pg-migrate has usually created it already (its
-- bookkeeping table, jobs.pgmigrations, lives here), so IF NOT EXISTS.
CREATE SCHEMA IF NOT EXISTS jobs;

-- One row per run of a job: what asked for it, how it went, and what it produced.
CREATE TABLE jobs.runs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  job text NOT NULL CHECK (job IN ('export', 'time-limited')),
  trigger text NOT NULL CHECK (trigger IN ('http', 'schedule', 'manual')),
  status text NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'skipped')),
  params jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  requested_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  lease_expires_at timestamptz,
  progress jsonb,
  result jsonb,
  error text,
  lambda_request_id text,
  -- A running run without a lease could never be recovered once its worker dies.
  CONSTRAINT runs_running_has_lease CHECK (status <> 'running' OR lease_expires_at IS NOT NULL)
);

-- At most one active run per job. This index, not code, is what enforces single flight:
-- a second concurrent insert of a queued run fails with unique_violation.
CREATE UNIQUE INDEX runs_one_active_per_job ON jobs.runs (job) WHERE status IN ('queued', 'running');

-- GET /jobs/{job}/runs: newest first.
CREATE INDEX runs_job_requested_at ON jobs.runs (job, requested_at DESC);

COMMENT ON TABLE jobs.runs IS 'Run history of the background jobs (water-abstraction-jobs).';
COMMENT ON COLUMN jobs.runs.lease_expires_at IS 'While running: when the worker''s Lambda timeout ends; a running run past it is dead and is marked timed_out by the next trigger.';
COMMENT ON COLUMN jobs.runs.lambda_request_id IS 'Lambda request id of the latest attempt.';

-- Down Migration

DROP TABLE jobs.runs;
