-- Replay checks (issue 10): each task call's arguments in canonical form, compared
-- on replay, and the flow retries a run has taken, counted in the store.
ALTER TABLE task_runs ADD COLUMN args_fingerprint text;
ALTER TABLE flow_runs ADD COLUMN retries_used integer NOT NULL DEFAULT 0;
