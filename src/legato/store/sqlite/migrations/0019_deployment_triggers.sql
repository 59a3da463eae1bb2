-- Suspending a running flow run from outside (`legato suspend`, the suspend-flow-run
-- action): like cancel_requested, the flag reaches the run's process with its
-- heartbeat, and the run pauses itself at its next task boundary. A request lives only
-- while the run is running: any state change away from running clears it.
ALTER TABLE flow_runs ADD COLUMN pause_requested INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER flow_run_pause_request_ends AFTER UPDATE OF state ON flow_runs
WHEN NEW.pause_requested AND NEW.state IS NOT 'running'
BEGIN
    UPDATE flow_runs SET pause_requested = 0 WHERE id = NEW.id;
END;
