-- Remote task runners (issue 13): the host and pid that ran a task's body
-- when it ran outside the flow run's process.
ALTER TABLE task_runs ADD COLUMN host text;
