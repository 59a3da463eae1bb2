-- Metrics, round 3 (issue 14): the flow run metric tables are no longer kept by a
-- trigger on flow_runs (which cost a run's every state change ~0.1 ms) but folded
-- at scrape time from the events index, which the run table's event trigger writes
-- in the transaction of each state change anyway. flow_run_metric_mark holds the
-- last (txid, seq) folded (one row); a scrape folds only the events after it, of
-- transactions older than every open one. Two triggers stay, neither on a local
-- run's path: the deletion one (a deleted run leaves the current counts -- the fold
-- adds its states from its events, whatever the order -- and its task mark goes) and
-- the start lateness one (the scheduled time at a run's first start is overwritten by
-- a later reschedule -- a sleep, a retry -- before a scrape could read it; it runs
-- once per run that has a scheduled time).
DROP TRIGGER flow_run_counts ON flow_runs;
DROP FUNCTION legato_flow_run_counts();

CREATE FUNCTION legato_flow_run_deleted_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO flow_run_counts AS c (flow_name, deployment, work_queue, state, entered, current)
    VALUES (OLD.flow_name, coalesce(OLD.deployment, ''), coalesce(OLD.work_queue, ''),
            OLD.state, 0, -1)
    ON CONFLICT (flow_name, deployment, work_queue, state) DO UPDATE
    SET current = c.current - 1;
    DELETE FROM task_run_marks WHERE flow_run_id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER flow_run_deleted_counts AFTER DELETE ON flow_runs
FOR EACH ROW EXECUTE FUNCTION legato_flow_run_deleted_counts();

CREATE FUNCTION legato_flow_run_lateness() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v double precision;
BEGIN
    v := greatest(extract(epoch FROM NEW.start_time - NEW.scheduled_time)::double precision, 0);
    INSERT INTO flow_run_histograms AS h (metric, a, b, le, n, total)
    VALUES ('lateness', coalesce(NEW.deployment, ''), coalesce(NEW.work_queue, ''),
            legato_metric_bucket(v), 1, v)
    ON CONFLICT (metric, a, b, le) DO UPDATE SET n = h.n + 1, total = h.total + excluded.total;
    RETURN NULL;
END $$;

CREATE TRIGGER flow_run_lateness_observed AFTER UPDATE OF start_time ON flow_runs
FOR EACH ROW
WHEN (OLD.start_time IS NULL AND NEW.start_time IS NOT NULL AND NEW.scheduled_time IS NOT NULL)
EXECUTE FUNCTION legato_flow_run_lateness();

CREATE TABLE flow_run_metric_mark (
    id integer PRIMARY KEY CHECK (id = 1),
    txid xid8 NOT NULL,
    seq bigint NOT NULL
);

-- Everything stored so far was counted by the trigger dropped above (dropping it
-- waited for every transaction that had written flow_runs with it).
INSERT INTO flow_run_metric_mark (id, txid, seq) VALUES (1, '0'::xid8, 0);
UPDATE flow_run_metric_mark SET txid = newest.txid, seq = newest.seq
FROM (SELECT txid, seq FROM events ORDER BY txid DESC, seq DESC LIMIT 1) AS newest
WHERE id = 1;
