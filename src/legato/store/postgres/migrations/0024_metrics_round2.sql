-- Metrics, round 2 (issue 14).
--
-- Task runs are counted monotonically: at every attempt end (a run leaving
-- 'running' for any state, or entering a final state, whoever writes it -- a crash
-- marked by another process too), the task run records of that run which reached
-- a final state (completed, failed, crashed, cancelled) and ended after the run's
-- mark are counted, and the mark moves to the newest end counted. One increment of
-- task_run_counts is one task run record reaching a final state; a resumed run's
-- failed call that then completes adds one 'failed' and later one 'completed', and
-- nothing is ever subtracted. The mark is one row per run, removed with the run.
CREATE TABLE task_run_marks (
    flow_run_id text COLLATE "C" PRIMARY KEY,
    counted_until timestamptz NOT NULL
);

-- The runs already ended had their task runs counted by migration 0022's trigger.
INSERT INTO task_run_marks (flow_run_id, counted_until)
SELECT t.flow_run_id, max(t.end_time)
FROM task_runs AS t JOIN flow_runs AS f ON f.id = t.flow_run_id
WHERE f.state IN ('completed', 'failed', 'crashed', 'cancelled') AND t.end_time IS NOT NULL
GROUP BY t.flow_run_id;

CREATE OR REPLACE FUNCTION legato_flow_run_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v double precision;
    mark timestamptz;
    newest timestamptz;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF TG_OP = 'UPDATE' AND NEW.state IS NOT DISTINCT FROM OLD.state
           AND NEW.flow_name IS NOT DISTINCT FROM OLD.flow_name
           AND NEW.deployment IS NOT DISTINCT FROM OLD.deployment
           AND NEW.work_queue IS NOT DISTINCT FROM OLD.work_queue THEN
            NULL;
        ELSE
            UPDATE flow_run_counts SET current = current - 1
            WHERE flow_name = OLD.flow_name AND deployment = coalesce(OLD.deployment, '')
              AND work_queue = coalesce(OLD.work_queue, '') AND state = OLD.state;
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM task_run_marks WHERE flow_run_id = OLD.id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state
       OR NEW.flow_name IS DISTINCT FROM OLD.flow_name
       OR NEW.deployment IS DISTINCT FROM OLD.deployment
       OR NEW.work_queue IS DISTINCT FROM OLD.work_queue THEN
        INSERT INTO flow_run_counts AS c (flow_name, deployment, work_queue, state, entered, current)
        VALUES (NEW.flow_name, coalesce(NEW.deployment, ''), coalesce(NEW.work_queue, ''), NEW.state,
                CASE WHEN TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN 1 ELSE 0 END,
                1)
        ON CONFLICT (flow_name, deployment, work_queue, state) DO UPDATE
        SET entered = c.entered + excluded.entered, current = c.current + 1;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.state IN ('completed', 'failed', 'crashed', 'cancelled')
       AND OLD.state NOT IN ('completed', 'failed', 'crashed', 'cancelled')
       AND NEW.start_time IS NOT NULL AND NEW.end_time IS NOT NULL THEN
        v := greatest(extract(epoch FROM NEW.end_time - NEW.start_time)::double precision, 0);
        INSERT INTO flow_run_histograms AS h (metric, a, b, le, n, total)
        VALUES ('duration', NEW.flow_name, coalesce(NEW.deployment, ''), legato_metric_bucket(v),
                1, v)
        ON CONFLICT (metric, a, b, le) DO UPDATE SET n = h.n + 1, total = h.total + excluded.total;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.start_time IS NULL AND NEW.start_time IS NOT NULL
       AND NEW.scheduled_time IS NOT NULL THEN
        v := greatest(extract(epoch FROM NEW.start_time - NEW.scheduled_time)::double precision, 0);
        INSERT INTO flow_run_histograms AS h (metric, a, b, le, n, total)
        VALUES ('lateness', coalesce(NEW.deployment, ''), coalesce(NEW.work_queue, ''),
                legato_metric_bucket(v), 1, v)
        ON CONFLICT (metric, a, b, le) DO UPDATE SET n = h.n + 1, total = h.total + excluded.total;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.state IS DISTINCT FROM OLD.state
       AND (OLD.state = 'running'
            OR NEW.state IN ('completed', 'failed', 'crashed', 'cancelled')) THEN
        SELECT m.counted_until INTO mark FROM task_run_marks AS m WHERE m.flow_run_id = NEW.id;
        mark := coalesce(mark, '-infinity'::timestamptz);
        INSERT INTO task_run_counts AS c (flow_name, task_name, state, n, cached)
        SELECT NEW.flow_name, t.task_name, t.state, count(*), count(*) FILTER (WHERE t.cached)
        FROM task_runs AS t
        WHERE t.flow_run_id = NEW.id AND t.end_time > mark
          AND t.state IN ('completed', 'failed', 'crashed', 'cancelled')
        GROUP BY t.task_name, t.state
        ON CONFLICT (flow_name, task_name, state) DO UPDATE
        SET n = c.n + excluded.n, cached = c.cached + excluded.cached;
        INSERT INTO flow_run_histograms AS h (metric, a, b, le, n, total)
        SELECT 'task_duration', NEW.flow_name, d.task_name, legato_metric_bucket(d.v),
               count(*), sum(d.v)
        FROM (SELECT t.task_name,
                     greatest(extract(epoch FROM t.end_time - t.start_time)::double precision, 0)
                     AS v
              FROM task_runs AS t
              WHERE t.flow_run_id = NEW.id AND t.start_time IS NOT NULL AND t.end_time > mark
                AND t.state IN ('completed', 'failed', 'crashed', 'cancelled')) AS d
        GROUP BY d.task_name, legato_metric_bucket(d.v)
        ON CONFLICT (metric, a, b, le) DO UPDATE SET n = h.n + excluded.n, total = h.total + excluded.total;
        SELECT max(t.end_time) INTO newest FROM task_runs AS t
        WHERE t.flow_run_id = NEW.id AND t.end_time > mark
          AND t.state IN ('completed', 'failed', 'crashed', 'cancelled');
        IF newest IS NOT NULL THEN
            INSERT INTO task_run_marks AS m (flow_run_id, counted_until) VALUES (NEW.id, newest)
            ON CONFLICT (flow_run_id) DO UPDATE SET counted_until = excluded.counted_until;
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- Task calls answered from the journal (replayed) instead of run, per flow name:
-- each attempt end adds the number its attempt replayed (one write per attempt).
CREATE TABLE task_replay_counts (
    flow_name text PRIMARY KEY,
    n bigint NOT NULL DEFAULT 0
);

-- Events per name, counted incrementally from the events table by the /metrics
-- collector: event_count_mark holds the last (txid, seq) counted (one row), so a
-- scrape reads only the events after it, of transactions older than every open one
-- (the order the event stream reads in). Events pruned later stay counted.
CREATE TABLE event_counts (
    event text PRIMARY KEY,
    n bigint NOT NULL DEFAULT 0
);

CREATE TABLE event_count_mark (
    id integer PRIMARY KEY CHECK (id = 1),
    txid xid8 NOT NULL,
    seq bigint NOT NULL
);

-- The events already stored (of finished transactions): counted once here.
INSERT INTO event_counts (event, n)
SELECT event, count(*) FROM events
WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) GROUP BY event;
INSERT INTO event_count_mark (id, txid, seq) VALUES (1, '0'::xid8, 0);
UPDATE event_count_mark SET txid = newest.txid, seq = newest.seq
FROM (SELECT txid, seq FROM events WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY txid DESC, seq DESC LIMIT 1) AS newest
WHERE id = 1;
