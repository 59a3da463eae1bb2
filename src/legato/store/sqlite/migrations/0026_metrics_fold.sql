-- Metrics, round 3 (issue 14): the flow run metric tables are no longer kept by
-- triggers on flow_runs (which cost a run's every state change ~0.1 ms) but folded
-- at scrape time from the events index, which the run table's event triggers write
-- in the transaction of each state change anyway. flow_run_metric_mark holds the
-- last event seq folded (one row); a scrape folds only the events after it.
-- Three triggers stay, none on a local run's path: the deletion ones (a deleted run
-- leaves the current counts -- the fold adds its states from its events, whatever
-- the order -- and its task mark goes) and flow_run_lateness_observed (the scheduled
-- time at a run's first start is overwritten by a later reschedule -- a sleep, a
-- retry -- before a scrape could read it; its body runs once per run that has a
-- scheduled time).
DROP TRIGGER flow_run_counts_created;
DROP TRIGGER flow_run_counts_changed;
DROP TRIGGER flow_run_duration_observed;
DROP TRIGGER flow_run_task_runs_counted;
DROP TRIGGER flow_run_task_runs_counted_journal;

-- A deleted run leaves the current count of its state even when the fold has not
-- added that state yet (the fold adds it later from the run's events).
DROP TRIGGER flow_run_counts_deleted;
CREATE TRIGGER flow_run_counts_deleted AFTER DELETE ON flow_runs
BEGIN
    INSERT INTO flow_run_counts (flow_name, deployment, work_queue, state, entered, current)
    VALUES (OLD.flow_name, coalesce(OLD.deployment, ''), coalesce(OLD.work_queue, ''),
            OLD.state, 0, -1)
    ON CONFLICT DO UPDATE SET current = current - 1;
END;

CREATE TABLE flow_run_metric_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);

-- Everything stored so far was counted by the triggers dropped above.
INSERT INTO flow_run_metric_mark (id, seq) SELECT 1, coalesce(max(seq), 0) FROM events;
