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
    flow_run_id TEXT PRIMARY KEY,
    counted_until REAL NOT NULL
) WITHOUT ROWID;

-- The runs already ended had their task runs counted by migration 0023's trigger.
INSERT INTO task_run_marks (flow_run_id, counted_until)
SELECT t.flow_run_id, max(t.end_time)
FROM task_runs AS t JOIN flow_runs AS f ON f.id = t.flow_run_id
WHERE f.state IN ('completed', 'failed', 'crashed', 'cancelled') AND t.end_time IS NOT NULL
GROUP BY t.flow_run_id;

DROP TRIGGER flow_run_task_runs_counted;

CREATE TRIGGER flow_run_task_runs_counted AFTER UPDATE OF state ON flow_runs
WHEN NEW.state IS NOT OLD.state
    AND (OLD.state = 'running' OR NEW.state IN ('completed', 'failed', 'crashed', 'cancelled'))
    AND NOT EXISTS (SELECT 1 FROM task_run_journal WHERE flow_run_id = NEW.id)
BEGIN
    -- the run's task runs are all folded (the usual case: the run-end write folds
    -- first): each qualifying record adds itself, no sort, no temporary table
    INSERT INTO task_run_counts (flow_name, task_name, state, n, cached)
    SELECT NEW.flow_name, task_name, state, 1, cached FROM task_runs
    WHERE flow_run_id = NEW.id AND state IN ('completed', 'failed', 'crashed', 'cancelled') AND end_time > coalesce((SELECT counted_until FROM task_run_marks WHERE flow_run_id = NEW.id), -1e300)
    ON CONFLICT DO UPDATE SET n = n + 1, cached = cached + excluded.cached;
    INSERT INTO flow_run_histograms (metric, a, b, le, n, total)
    SELECT 'task_duration', NEW.flow_name, task_name, CASE WHEN v <= 0.1 THEN 0.1 WHEN v <= 0.5 THEN 0.5 WHEN v <= 1 THEN 1
                WHEN v <= 5 THEN 5 WHEN v <= 10 THEN 10 WHEN v <= 30 THEN 30
                WHEN v <= 60 THEN 60 WHEN v <= 300 THEN 300 WHEN v <= 900 THEN 900
                WHEN v <= 3600 THEN 3600 WHEN v <= 21600 THEN 21600
                WHEN v <= 86400 THEN 86400 ELSE -1 END, 1, v
    FROM (SELECT task_name, max(end_time - start_time, 0.0) AS v FROM task_runs
          WHERE flow_run_id = NEW.id AND state IN ('completed', 'failed', 'crashed', 'cancelled') AND start_time IS NOT NULL
            AND end_time > coalesce((SELECT counted_until FROM task_run_marks WHERE flow_run_id = NEW.id), -1e300))
    WHERE true
    ON CONFLICT DO UPDATE SET n = n + 1, total = total + excluded.total;
    INSERT INTO task_run_marks (flow_run_id, counted_until)
    SELECT NEW.id, m.until
    FROM (SELECT max(end_time) AS until FROM task_runs
          WHERE flow_run_id = NEW.id AND state IN ('completed', 'failed', 'crashed', 'cancelled')) AS m
    WHERE m.until IS NOT NULL
    ON CONFLICT DO UPDATE SET counted_until = max(counted_until, excluded.counted_until);
END;

CREATE TRIGGER flow_run_task_runs_counted_journal AFTER UPDATE OF state ON flow_runs
WHEN NEW.state IS NOT OLD.state
    AND (OLD.state = 'running' OR NEW.state IN ('completed', 'failed', 'crashed', 'cancelled'))
    AND EXISTS (SELECT 1 FROM task_run_journal WHERE flow_run_id = NEW.id)
BEGIN
    -- some of the run's task runs are still in the journal (a run ended by another
    -- process): the newest journal entry of each call key replaces its folded record
    INSERT INTO task_run_counts (flow_name, task_name, state, n, cached)
    SELECT NEW.flow_name, t.task_name, t.state, 1, t.cached
    FROM (SELECT task_name, state, cached, end_time FROM task_runs
          WHERE flow_run_id = NEW.id
            AND call_key NOT IN (SELECT call_key FROM task_run_journal
                                 WHERE flow_run_id = NEW.id)
          UNION ALL
          SELECT task_name, state, cached, end_time
          FROM (SELECT task_name, state, cached, end_time, max(seq)
                FROM task_run_journal WHERE flow_run_id = NEW.id GROUP BY call_key)) AS t
    WHERE t.state IN ('completed', 'failed', 'crashed', 'cancelled')
      AND t.end_time > coalesce(
          (SELECT counted_until FROM task_run_marks WHERE flow_run_id = NEW.id), -1e300)
    ON CONFLICT DO UPDATE SET n = n + 1, cached = cached + excluded.cached;
    INSERT INTO flow_run_histograms (metric, a, b, le, n, total)
    SELECT 'task_duration', NEW.flow_name, d.task_name,
           CASE WHEN d.v <= 0.1 THEN 0.1 WHEN d.v <= 0.5 THEN 0.5 WHEN d.v <= 1 THEN 1
                WHEN d.v <= 5 THEN 5 WHEN d.v <= 10 THEN 10 WHEN d.v <= 30 THEN 30
                WHEN d.v <= 60 THEN 60 WHEN d.v <= 300 THEN 300 WHEN d.v <= 900 THEN 900
                WHEN d.v <= 3600 THEN 3600 WHEN d.v <= 21600 THEN 21600
                WHEN d.v <= 86400 THEN 86400 ELSE -1 END,
           1, d.v
    FROM (SELECT t.task_name, max(t.end_time - t.start_time, 0.0) AS v
          FROM (SELECT task_name, state, start_time, end_time FROM task_runs
                WHERE flow_run_id = NEW.id
                  AND call_key NOT IN (SELECT call_key FROM task_run_journal
                                       WHERE flow_run_id = NEW.id)
                UNION ALL
                SELECT task_name, state, start_time, end_time
                FROM (SELECT task_name, state, start_time, end_time, max(seq)
                      FROM task_run_journal WHERE flow_run_id = NEW.id GROUP BY call_key)) AS t
          WHERE t.state IN ('completed', 'failed', 'crashed', 'cancelled')
            AND t.start_time IS NOT NULL
            AND t.end_time > coalesce(
                (SELECT counted_until FROM task_run_marks WHERE flow_run_id = NEW.id), -1e300)
         ) AS d
    WHERE true
    ON CONFLICT DO UPDATE SET n = n + 1, total = total + excluded.total;
    INSERT INTO task_run_marks (flow_run_id, counted_until)
    SELECT NEW.id, m.until
    FROM (SELECT max(t.end_time) AS until
          FROM (SELECT state, end_time FROM task_runs
                WHERE flow_run_id = NEW.id
                  AND call_key NOT IN (SELECT call_key FROM task_run_journal
                                       WHERE flow_run_id = NEW.id)
                UNION ALL
                SELECT state, end_time
                FROM (SELECT state, end_time, max(seq)
                      FROM task_run_journal WHERE flow_run_id = NEW.id GROUP BY call_key)) AS t
          WHERE t.state IN ('completed', 'failed', 'crashed', 'cancelled')) AS m
    WHERE m.until IS NOT NULL
    ON CONFLICT DO UPDATE SET counted_until = max(counted_until, excluded.counted_until);
END;

CREATE TRIGGER flow_run_task_marks_deleted AFTER DELETE ON flow_runs
BEGIN
    DELETE FROM task_run_marks WHERE flow_run_id = OLD.id;
END;

-- Task calls answered from the journal (replayed) instead of run, per flow name:
-- each attempt end adds the number its attempt replayed (one write per attempt).
CREATE TABLE task_replay_counts (
    flow_name TEXT PRIMARY KEY,
    n INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Events per name, counted incrementally from the events table by the /metrics
-- collector: event_count_mark holds the last seq counted (one row), so a scrape
-- reads only the events after it. Events pruned later stay counted.
CREATE TABLE event_counts (
    event TEXT PRIMARY KEY,
    n INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE event_count_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);

-- The events already stored: counted once here.
INSERT INTO event_counts (event, n) SELECT event, count(*) FROM events GROUP BY event;
INSERT INTO event_count_mark (id, seq) SELECT 1, coalesce(max(seq), 0) FROM events;
