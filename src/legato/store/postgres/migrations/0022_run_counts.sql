-- Metrics (issue 14): aggregate counts of flow runs kept by the run table's own
-- trigger, in the transaction of each change, so a scrape reads a few rows per
-- (flow, deployment, queue, state) instead of scanning every run. entered: runs
-- that ever entered the state (kept when runs are deleted); current: runs in the
-- state now. '' stands for no deployment/queue.
CREATE TABLE flow_run_counts (
    flow_name text NOT NULL,
    deployment text NOT NULL,
    work_queue text NOT NULL,
    state text NOT NULL,
    entered bigint NOT NULL DEFAULT 0,
    current bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (flow_name, deployment, work_queue, state)
);

-- Histograms of flow run durations (metric 'duration': a = flow, b = deployment)
-- and start lateness (metric 'lateness': a = deployment, b = work queue): one row
-- per bucket, n runs whose value fell in it (not cumulative), le its upper bound
-- (-1 for +Inf), total the sum of their values.
CREATE TABLE flow_run_histograms (
    metric text NOT NULL,
    a text NOT NULL,
    b text NOT NULL,
    le double precision NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    total double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (metric, a, b, le)
);

-- Task runs are counted when their flow run ends (in the states they ended in), by
-- one grouped read of that run's task runs: nothing is added to the per-task path.
-- A run that leaves its final state (a resume) has its task runs uncounted, to be
-- counted again when it ends. cached: those whose result came from the cache.
CREATE TABLE task_run_counts (
    flow_name text NOT NULL,
    task_name text NOT NULL,
    state text NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    cached bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (flow_name, task_name, state)
);

CREATE FUNCTION legato_metric_bucket(v double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v <= 0.1 THEN 0.1 WHEN v <= 0.5 THEN 0.5 WHEN v <= 1 THEN 1
                WHEN v <= 5 THEN 5 WHEN v <= 10 THEN 10 WHEN v <= 30 THEN 30
                WHEN v <= 60 THEN 60 WHEN v <= 300 THEN 300 WHEN v <= 900 THEN 900
                WHEN v <= 3600 THEN 3600 WHEN v <= 21600 THEN 21600
                WHEN v <= 86400 THEN 86400 ELSE -1 END
$$;

CREATE FUNCTION legato_flow_run_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v double precision;
    sign integer;
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
    IF TG_OP = 'UPDATE' AND (NEW.state IN ('completed', 'failed', 'crashed', 'cancelled'))
       IS DISTINCT FROM (OLD.state IN ('completed', 'failed', 'crashed', 'cancelled')) THEN
        sign := CASE WHEN NEW.state IN ('completed', 'failed', 'crashed', 'cancelled')
                     THEN 1 ELSE -1 END;
        INSERT INTO task_run_counts AS c (flow_name, task_name, state, n, cached)
        SELECT NEW.flow_name, t.task_name, t.state, count(*) * sign,
               count(*) FILTER (WHERE t.cached) * sign
        FROM task_runs AS t WHERE t.flow_run_id = NEW.id
        GROUP BY t.task_name, t.state
        ON CONFLICT (flow_name, task_name, state) DO UPDATE
        SET n = c.n + excluded.n, cached = c.cached + excluded.cached;
        INSERT INTO flow_run_histograms AS h (metric, a, b, le, n, total)
        SELECT 'task_duration', NEW.flow_name, d.task_name, legato_metric_bucket(d.v),
               count(*) * sign, sum(d.v) * sign
        FROM (SELECT t.task_name,
                     greatest(extract(epoch FROM t.end_time - t.start_time)::double precision, 0)
                     AS v
              FROM task_runs AS t
              WHERE t.flow_run_id = NEW.id AND t.start_time IS NOT NULL
                AND t.end_time IS NOT NULL) AS d
        GROUP BY d.task_name, legato_metric_bucket(d.v)
        ON CONFLICT (metric, a, b, le) DO UPDATE SET n = h.n + excluded.n, total = h.total + excluded.total;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER flow_run_counts AFTER INSERT OR DELETE
OR UPDATE OF state, flow_name, deployment, work_queue, start_time ON flow_runs
FOR EACH ROW EXECUTE FUNCTION legato_flow_run_counts();

-- The runs already stored: counted once here (their past states are not known,
-- so each counts as having entered its current state only).
INSERT INTO flow_run_counts (flow_name, deployment, work_queue, state, entered, current)
SELECT flow_name, coalesce(deployment, ''), coalesce(work_queue, ''), state, count(*), count(*)
FROM flow_runs GROUP BY 1, 2, 3, 4;
