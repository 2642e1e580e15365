-- Up Migration

-- The restore job (README, "Restoring an export"): a run of its own kind, fanned out like the
-- export, one step per schema.
ALTER TABLE jobs.runs DROP CONSTRAINT runs_job_check;
ALTER TABLE jobs.runs ADD CONSTRAINT runs_job_check CHECK (job IN ('export', 'time-limited', 'restore'));

-- What a step works on, fixed when its run fans out (the restore: the tarball's key, the ETag it
-- had and the export run it came from), and when its attempt had built its schema out of sight:
-- the step that finds every other step of its run built is the one that puts them all in place.
ALTER TABLE jobs.run_steps
  ADD COLUMN input jsonb,
  ADD COLUMN staged_at timestamptz;

COMMENT ON COLUMN jobs.run_steps.input IS 'What the step works on, fixed when its run fanned out (restore: {key, etag, exportRunId, staging}); null for the export.';
COMMENT ON COLUMN jobs.run_steps.staged_at IS 'Restore: when this attempt had its schema built out of sight; reset when an attempt starts.';

-- Down Migration

ALTER TABLE jobs.run_steps DROP COLUMN staged_at, DROP COLUMN input;
DELETE FROM jobs.runs WHERE job = 'restore';
ALTER TABLE jobs.runs DROP CONSTRAINT runs_job_check;
ALTER TABLE jobs.runs ADD CONSTRAINT runs_job_check CHECK (job IN ('export', 'time-limited'));
