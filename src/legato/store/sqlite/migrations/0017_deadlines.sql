-- Deadlines of flow runs (`legato.Deadline`), one row per run and deadline, written
-- with the run. due_at is NULL until the reference time is known (a "started"
-- deadline is armed by the trigger below when the run starts) and again once the
-- run ended; fired_at is set, compare-and-set, by the sweep that emits the
-- deadline-missed event in the same transaction.
CREATE TABLE flow_run_deadlines (
    run_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    reference TEXT NOT NULL CHECK (reference IN ('scheduled', 'started')),
    within_seconds REAL NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('alert', 'cancel')),
    due_at REAL,
    fired_at REAL,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;
CREATE INDEX flow_run_deadlines_due ON flow_run_deadlines (due_at)
WHERE fired_at IS NULL AND due_at IS NOT NULL;

CREATE TRIGGER flow_run_deadlines_started AFTER UPDATE OF state ON flow_runs
WHEN NEW.state = 'running' AND NEW.state IS NOT OLD.state
BEGIN
    UPDATE flow_run_deadlines
    SET due_at = coalesce(NEW.start_time, (julianday('now') - 2440587.5) * 86400.0)
                 + within_seconds
    WHERE run_id = NEW.id AND reference = 'started' AND due_at IS NULL AND fired_at IS NULL;
END;

CREATE TRIGGER flow_run_deadlines_ended AFTER UPDATE OF state ON flow_runs
WHEN NEW.state IN ('completed', 'failed', 'crashed', 'cancelled')
     AND NEW.state IS NOT OLD.state
BEGIN
    UPDATE flow_run_deadlines SET due_at = NULL
    WHERE run_id = NEW.id AND fired_at IS NULL AND due_at IS NOT NULL;
END;

CREATE TRIGGER flow_run_deadlines_deleted AFTER DELETE ON flow_runs
BEGIN
    DELETE FROM flow_run_deadlines WHERE run_id = OLD.id;
END;

-- Scheduled runs by due time: the late-run sweep reads those past due.
CREATE INDEX flow_runs_scheduled_due ON flow_runs (scheduled_time) WHERE state = 'scheduled';

-- A deployment's deadlines (JSON list of {within, reference, action}), given to each
-- run it queues.
ALTER TABLE deployments ADD COLUMN deadlines TEXT;
