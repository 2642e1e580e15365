-- Up Migration

-- What an operator reaches for (README, "Cancelling a run", "Pausing a schedule"): a run or step
-- may be cancelled; every run records who asked for it, and a cancel who asked for that.
ALTER TABLE jobs.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE jobs.runs ADD CONSTRAINT runs_status_check
  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'skipped', 'cancelled'));
ALTER TABLE jobs.run_steps DROP CONSTRAINT run_steps_status_check;
ALTER TABLE jobs.run_steps ADD CONSTRAINT run_steps_status_check
  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled'));

ALTER TABLE jobs.runs
  ADD COLUMN requested_by jsonb,
  ADD COLUMN cancelled_by jsonb;

COMMENT ON COLUMN jobs.runs.requested_by IS 'Who asked: {"kind":"http","apiKeyId","sourceIp","userAgent"} (never the key), {"kind":"schedule"}, {"kind":"manual"}, or {"kind":"export","exportRunId"}.';
COMMENT ON COLUMN jobs.runs.cancelled_by IS 'Who cancelled the run, as requested_by; null unless cancelled.';

-- A job's schedule paused without a deploy: a scheduled invocation of a paused job records a
-- skipped run naming the pause. One row per job that was ever paused or resumed.
CREATE TABLE jobs.schedule_pauses (
  job text PRIMARY KEY CHECK (job IN ('export', 'time-limited', 'restore')),
  paused boolean NOT NULL,
  changed_by jsonb NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE jobs.schedule_pauses IS 'Whether each job''s schedule is paused, who changed that and when (PUT /jobs/{job}/schedule).';

-- Down Migration

DROP TABLE jobs.schedule_pauses;
UPDATE jobs.run_steps SET status = 'failed', error = coalesce(error, 'cancelled') WHERE status = 'cancelled';
UPDATE jobs.runs SET status = 'failed', error = coalesce(error, 'cancelled') WHERE status = 'cancelled';
ALTER TABLE jobs.runs DROP COLUMN cancelled_by, DROP COLUMN requested_by;
ALTER TABLE jobs.run_steps DROP CONSTRAINT run_steps_status_check;
ALTER TABLE jobs.run_steps ADD CONSTRAINT run_steps_status_check
  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out'));
ALTER TABLE jobs.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE jobs.runs ADD CONSTRAINT runs_status_check
  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'skipped'));
