-- Replay checks (issue 10): each task call's arguments in canonical form, compared
-- on replay, and the flow retries a run has taken, counted in the store.
ALTER TABLE task_runs ADD COLUMN args_fingerprint TEXT;
ALTER TABLE task_run_journal ADD COLUMN args_fingerprint TEXT;
ALTER TABLE flow_runs ADD COLUMN retries_used INTEGER NOT NULL DEFAULT 0;
