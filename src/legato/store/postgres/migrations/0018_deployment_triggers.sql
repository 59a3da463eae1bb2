-- Suspending a running flow run from outside (`legato suspend`, the suspend-flow-run
-- action): like cancel_requested, the flag reaches the run's process with its
-- heartbeat, and the run pauses itself at its next task boundary. A request lives only
-- while the run is running: any state change away from running clears it.
ALTER TABLE flow_runs ADD COLUMN pause_requested boolean NOT NULL DEFAULT false;

CREATE FUNCTION legato_flow_run_pause_request_ends() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.pause_requested := false;
    RETURN NEW;
END;
$$;

CREATE TRIGGER flow_run_pause_request_ends BEFORE UPDATE OF state ON flow_runs
FOR EACH ROW WHEN (NEW.pause_requested AND NEW.state <> 'running')
EXECUTE FUNCTION legato_flow_run_pause_request_ends();
