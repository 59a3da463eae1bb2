-- Deadlines of flow runs (`legato.Deadline`), one row per run and deadline, written
-- with the run. due_at is NULL until the reference time is known (a "started"
-- deadline is armed by the trigger below when the run starts) and again once the
-- run ended; fired_at is set, compare-and-set, by the sweep that emits the
-- deadline-missed event in the same transaction.
CREATE TABLE flow_run_deadlines (
    run_id text COLLATE "C" NOT NULL,
    idx integer NOT NULL,
    reference text NOT NULL CHECK (reference IN ('scheduled', 'started')),
    within_seconds double precision NOT NULL,
    action text NOT NULL CHECK (action IN ('alert', 'cancel')),
    due_at timestamptz,
    fired_at timestamptz,
    PRIMARY KEY (run_id, idx)
);
CREATE INDEX flow_run_deadlines_due ON flow_run_deadlines (due_at)
WHERE fired_at IS NULL AND due_at IS NOT NULL;

CREATE FUNCTION legato_flow_run_deadlines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM flow_run_deadlines WHERE run_id = OLD.id;
    ELSIF NEW.state IS NOT DISTINCT FROM OLD.state THEN
        RETURN NULL;
    ELSIF NEW.state = 'running' THEN
        UPDATE flow_run_deadlines
        SET due_at = coalesce(NEW.start_time, clock_timestamp())
                     + make_interval(secs => within_seconds)
        WHERE run_id = NEW.id AND reference = 'started' AND due_at IS NULL
              AND fired_at IS NULL;
    ELSIF NEW.state IN ('completed', 'failed', 'crashed', 'cancelled') THEN
        UPDATE flow_run_deadlines SET due_at = NULL
        WHERE run_id = NEW.id AND fired_at IS NULL AND due_at IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER flow_run_deadlines_state AFTER UPDATE OF state ON flow_runs
FOR EACH ROW EXECUTE FUNCTION legato_flow_run_deadlines();
CREATE TRIGGER flow_run_deadlines_deleted AFTER DELETE ON flow_runs
FOR EACH ROW EXECUTE FUNCTION legato_flow_run_deadlines();

-- Scheduled runs by due time: the late-run sweep reads those past due.
CREATE INDEX flow_runs_scheduled_due ON flow_runs (scheduled_time) WHERE state = 'scheduled';

-- A deployment's deadlines (JSON list of {within, reference, action}), given to each
-- run it queues.
ALTER TABLE deployments ADD COLUMN deadlines text;
