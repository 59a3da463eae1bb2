-- The attempts of a task run that took more than one (when each ran, how it
-- ended), for the timeline; NULL for the usual single attempt.
ALTER TABLE task_runs ADD COLUMN attempt_log jsonb;
