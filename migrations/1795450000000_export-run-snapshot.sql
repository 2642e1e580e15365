-- Up Migration

-- One moment for a whole export run (README, "One moment"): the coordinator holds a transaction
-- whose snapshot every step imports (pg_export_snapshot / SET TRANSACTION SNAPSHOT).
ALTER TABLE jobs.runs
  ADD COLUMN snapshot_id text,
  ADD COLUMN as_of timestamptz;

-- When the step's attempt had imported the run's snapshot on every connection it reads with: the
-- coordinator lets the snapshot go once every step has, or has ended.
ALTER TABLE jobs.run_steps
  ADD COLUMN snapshot_imported_at timestamptz;

COMMENT ON COLUMN jobs.runs.snapshot_id IS 'The export run''s snapshot, as pg_export_snapshot() named it; importable only while the coordinator holds it.';
COMMENT ON COLUMN jobs.runs.as_of IS 'The moment the run''s tarballs show: the start of the transaction that exported the snapshot.';
COMMENT ON COLUMN jobs.run_steps.snapshot_imported_at IS 'When this attempt imported the run''s snapshot; reset when an attempt starts.';

-- Down Migration

ALTER TABLE jobs.run_steps DROP COLUMN snapshot_imported_at;
ALTER TABLE jobs.runs DROP COLUMN as_of, DROP COLUMN snapshot_id;
