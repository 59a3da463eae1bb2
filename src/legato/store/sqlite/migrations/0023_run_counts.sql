-- Metrics (issue 14): aggregate counts of flow runs kept by the run table's own
-- triggers, in the transaction of each change, so a scrape reads a few rows
-- per (flow, deployment, queue, state) instead of scanning every run.
-- entered: runs that ever entered the state (a counter, kept when runs are
-- deleted); current: runs in the state now. '' stands for no deployment/queue.
CREATE TABLE flow_run_counts (
    flow_name TEXT NOT NULL,
    deployment TEXT NOT NULL,
    work_queue TEXT NOT NULL,
    state TEXT NOT NULL,
    entered INTEGER NOT NULL DEFAULT 0,
    current INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (flow_name, deployment, work_queue, state)
) WITHOUT ROWID;

-- Histograms of flow run durations (metric 'duration': a = flow, b = deployment)
-- and start lateness (metric 'lateness': a = deployment, b = work queue): one row
-- per bucket, n runs whose value fell in it (not cumulative), le its upper bound
-- (-1 for +Inf), total the sum of their values.
CREATE TABLE flow_run_histograms (
    metric TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    le REAL NOT NULL,
    n INTEGER NOT NULL DEFAULT 0,
    total REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (metric, a, b, le)
) WITHOUT ROWID;

CREATE TRIGGER flow_run_counts_created AFTER INSERT ON flow_runs
BEGIN
    INSERT INTO flow_run_counts (flow_name, deployment, work_queue, state, entered, current)
    VALUES (NEW.flow_name, coalesce(NEW.deployment, ''), coalesce(NEW.work_queue, ''),
            NEW.state, 1, 1)
    ON CONFLICT DO UPDATE SET entered = entered + 1, current = current + 1;
END;

CREATE TRIGGER flow_run_counts_changed
AFTER UPDATE OF state, flow_name, deployment, work_queue ON flow_runs
WHEN NEW.state IS NOT OLD.state OR NEW.flow_name IS NOT OLD.flow_name
    OR NEW.deployment IS NOT OLD.deployment OR NEW.work_queue IS NOT OLD.work_queue
BEGIN
    UPDATE flow_run_counts SET current = current - 1
    WHERE flow_name = OLD.flow_name AND deployment = coalesce(OLD.deployment, '')
      AND work_queue = coalesce(OLD.work_queue, '') AND state = OLD.state;
    INSERT INTO flow_run_counts (flow_name, deployment, work_queue, state, entered, current)
    VALUES (NEW.flow_name, coalesce(NEW.deployment, ''), coalesce(NEW.work_queue, ''),
            NEW.state, NEW.state IS NOT OLD.state, 1)
    ON CONFLICT DO UPDATE SET entered = entered + excluded.entered, current = current + 1;
END;

CREATE TRIGGER flow_run_counts_deleted AFTER DELETE ON flow_runs
BEGIN
    UPDATE flow_run_counts SET current = current - 1
    WHERE flow_name = OLD.flow_name AND deployment = coalesce(OLD.deployment, '')
      AND work_queue = coalesce(OLD.work_queue, '') AND state = OLD.state;
END;

CREATE TRIGGER flow_run_duration_observed AFTER UPDATE OF state ON flow_runs
WHEN NEW.state IN ('completed', 'failed', 'crashed', 'cancelled')
    AND OLD.state NOT IN ('completed', 'failed', 'crashed', 'cancelled')
    AND NEW.start_time IS NOT NULL AND NEW.end_time IS NOT NULL
BEGIN
    INSERT INTO flow_run_histograms (metric, a, b, le, n, total)
    SELECT 'duration', NEW.flow_name, coalesce(NEW.deployment, ''),
           CASE WHEN v <= 0.1 THEN 0.1 WHEN v <= 0.5 THEN 0.5 WHEN v <= 1 THEN 1
                WHEN v <= 5 THEN 5 WHEN v <= 10 THEN 10 WHEN v <= 30 THEN 30
                WHEN v <= 60 THEN 60 WHEN v <= 300 THEN 300 WHEN v <= 900 THEN 900
                WHEN v <= 3600 THEN 3600 WHEN v <= 21600 THEN 21600
                WHEN v <= 86400 THEN 86400 ELSE -1 END, 1, v
    FROM (SELECT max(NEW.end_time - NEW.start_time, 0.0) AS v)
    WHERE true
    ON CONFLICT DO UPDATE SET n = n + 1, total = total + excluded.total;
END;

CREATE TRIGGER flow_run_lateness_observed AFTER UPDATE OF start_time ON flow_runs
WHEN OLD.start_time IS NULL AND NEW.start_time IS NOT NULL AND NEW.scheduled_time IS NOT NULL
BEGIN
    INSERT INTO flow_run_histograms (metric, a, b, le, n, total)
    SELECT 'lateness', coalesce(NEW.deployment, ''), coalesce(NEW.work_queue, ''),
           CASE WHEN v <= 0.1 THEN 0.1 WHEN v <= 0.5 THEN 0.5 WHEN v <= 1 THEN 1
                WHEN v <= 5 THEN 5 WHEN v <= 10 THEN 10 WHEN v <= 30 THEN 30
                WHEN v <= 60 THEN 60 WHEN v <= 300 THEN 300 WHEN v <= 900 THEN 900
                WHEN v <= 3600 THEN 3600 WHEN v <= 21600 THEN 21600
                WHEN v <= 86400 THEN 86400 ELSE -1 END, 1, v
    FROM (SELECT max(NEW.start_time - NEW.scheduled_time, 0.0) AS v)
    WHERE true
    ON CONFLICT DO UPDATE SET n = n + 1, total = total + excluded.total;
END;

-- Task runs are counted when their flow run ends (in the states they ended in), by
-- one grouped read of that run's task runs (those still in the journal included, the
-- newest entry per call key, as the fold will keep): nothing is added to the per-task
-- path.
-- A run that leaves its final state (a resume) has its task runs uncounted, to be
-- counted again when it ends. cached: those whose result came from the cache.
CREATE TABLE task_run_counts (
    flow_name TEXT NOT NULL,
    task_name TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (flow_name, task_name, state)
) WITHOUT ROWID;

CREATE TRIGGER flow_run_task_runs_counted AFTER UPDATE OF state ON flow_runs
WHEN (NEW.state IN ('completed', 'failed', 'crashed', 'cancelled'))
    IS NOT (OLD.state IN ('completed', 'failed', 'crashed', 'cancelled'))
BEGIN
    INSERT INTO task_run_counts (flow_name, task_name, state, n, cached)
    SELECT NEW.flow_name, t.task_name, t.state,
           count(*) * s.sign, sum(t.cached) * s.sign
    FROM (SELECT task_name, state, cached, start_time, end_time, max(src)
          FROM (SELECT call_key, task_name, state, cached, start_time, end_time, 0 AS src
                FROM task_runs WHERE flow_run_id = NEW.id
                UNION ALL
                SELECT call_key, task_name, state, cached, start_time, end_time, seq
                FROM task_run_journal WHERE flow_run_id = NEW.id)
          GROUP BY call_key) AS t,
         (SELECT CASE WHEN NEW.state IN ('completed', 'failed', 'crashed', 'cancelled')
                      THEN 1 ELSE -1 END AS sign) AS s
    GROUP BY t.task_name, t.state
    ON CONFLICT DO UPDATE SET n = n + excluded.n, cached = cached + excluded.cached;
    INSERT INTO flow_run_histograms (metric, a, b, le, n, total)
    SELECT 'task_duration', NEW.flow_name, d.task_name,
           CASE WHEN d.v <= 0.1 THEN 0.1 WHEN d.v <= 0.5 THEN 0.5 WHEN d.v <= 1 THEN 1
                WHEN d.v <= 5 THEN 5 WHEN d.v <= 10 THEN 10 WHEN d.v <= 30 THEN 30
                WHEN d.v <= 60 THEN 60 WHEN d.v <= 300 THEN 300 WHEN d.v <= 900 THEN 900
                WHEN d.v <= 3600 THEN 3600 WHEN d.v <= 21600 THEN 21600
                WHEN d.v <= 86400 THEN 86400 ELSE -1 END AS bucket,
           count(*) * d.sign, sum(d.v) * d.sign
    FROM (SELECT t.task_name, max(t.end_time - t.start_time, 0.0) AS v,
                 CASE WHEN NEW.state IN ('completed', 'failed', 'crashed', 'cancelled')
                      THEN 1 ELSE -1 END AS sign
          FROM (SELECT task_name, state, cached, start_time, end_time, max(src)
               FROM (SELECT call_key, task_name, state, cached, start_time, end_time, 0 AS src
                     FROM task_runs WHERE flow_run_id = NEW.id
                     UNION ALL
                     SELECT call_key, task_name, state, cached, start_time, end_time, seq
                     FROM task_run_journal WHERE flow_run_id = NEW.id)
               GROUP BY call_key) AS t
          WHERE t.start_time IS NOT NULL AND t.end_time IS NOT NULL) AS d
    GROUP BY d.task_name, bucket
    ON CONFLICT DO UPDATE SET n = n + excluded.n, total = total + excluded.total;
END;

-- The runs already stored: counted once here (their past states are not known,
-- so each counts as having entered its current state only).
INSERT INTO flow_run_counts (flow_name, deployment, work_queue, state, entered, current)
SELECT flow_name, coalesce(deployment, ''), coalesce(work_queue, ''), state, count(*), count(*)
FROM flow_runs GROUP BY 1, 2, 3, 4;
