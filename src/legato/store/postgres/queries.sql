-- Named queries of the PostgreSQL store.
--
-- A line "-- name --" starts a block that runs until the next such line;
-- legato.store.postgres.sql loads them into a dict once, at import. "{name}"
-- inside a block is replaced by the block of that name (shared column lists).
-- Parameters are psycopg's positional "%s"; each block's comment lists them in
-- order. Every parameter that is not compared with a column carries a cast,
-- so the server never has to guess a type. A list of values is bound as one
-- array. Each store method is one statement, so one round trip: writes that
-- touch several tables are data-modifying CTEs, atomic as a single statement.
--
-- Fencing: a write on behalf of a run's owner reads the run's row with
-- "owner_token = %s ... FOR SHARE". The share lock makes the check hold until
-- commit: a takeover (start_flow_run, an UPDATE of that row) waits for the
-- write to commit, and a write that started after a takeover began waits for
-- it and then re-checks the token on the new row version, so it fails.

-- flow_run_columns --
-- Column order read by rows.flow_run_from_row.
id, state, owner_token, flow_name, name, created, start_time, end_time, heartbeat_at,
attempts, cancel_requested, parent_run_id, parent_call_key, entrypoint, flow_version,
owner_host, owner_pid, owner_pid_started, result_serializer, state_message, tags,
parameters, error, pause, result IS NOT NULL, work_queue, priority, scheduled_time,
deployment, idempotency_key, concurrency_key, concurrency_limit, retries_used,
trace_context

-- task_run_columns --
-- Column order read by rows.task_run_from_row.
id, flow_run_id, call_key, task_name, name, state, attempts, cached, rolled_back,
start_time, end_time, parent_task_run_id, cache_key, cache_expires_at,
result_serializer, tags, dependencies, inputs, error, result IS NOT NULL, attempt_log,
args_fingerprint, host

-- log_columns --
-- Column order read by rows.log_from_row.
id, flow_run_id, task_run_id, timestamp, level, logger, message, trace_id, span_id

-- log_rows --
-- Eight arrays of equal length (flow_run_id, task_run_id, timestamp, level,
-- logger, message, trace_id, span_id) as rows; ordinality keeps ids in the order given.
unnest(
    %s::text[], %s::text[], %s::timestamptz[], %s::integer[], %s::text[], %s::text[],
    %s::text[], %s::text[]
) WITH ORDINALITY AS l (
    flow_run_id, task_run_id, timestamp, level, logger, message, trace_id, span_id, n
)

-- insert_log_rows --
-- Used after "FROM <fence>, " in the CTEs below: only when the fence holds.
INSERT INTO logs (flow_run_id, task_run_id, timestamp, level, logger, message, trace_id, span_id)
SELECT l.flow_run_id, l.task_run_id, l.timestamp, l.level, l.logger, l.message, l.trace_id,
    l.span_id

-- schema_state --
-- does schema_migrations exist, does flow_runs exist (in the schema where
-- CREATE TABLE puts tables). Read from the catalog tables themselves, not with
-- to_regclass: that one answers from this backend's catalog cache, which may
-- still hold "no such table" from before another process created it while we
-- waited for the migration lock; opening pg_class here also makes the backend
-- catch up with such changes for the statements that follow.
SELECT
    EXISTS (
        SELECT FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relname = 'schema_migrations'
    ),
    EXISTS (
        SELECT FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relname = 'flow_runs'
    )

-- schema_version --
SELECT max(version) FROM schema_migrations

-- record_migration --
-- version
INSERT INTO schema_migrations (version, applied_at) VALUES (%s, now())

-- migration_lock --
-- lock key: held until the migrating transaction ends, so that processes
-- opening the store together migrate one after the other (and only once)
SELECT pg_advisory_xact_lock(%s::bigint)

-- insert_flow_run --
-- the 33 columns below, in order
INSERT INTO flow_runs (
    id, state, owner_token, flow_name, name, created, start_time, end_time, heartbeat_at,
    attempts, cancel_requested, parent_run_id, parent_call_key, entrypoint, flow_version,
    owner_host, owner_pid, owner_pid_started, result_serializer, state_message, tags,
    parameters, error, pause, parameters_blob, work_queue, priority, scheduled_time,
    deployment, idempotency_key, concurrency_key, concurrency_limit,
    trace_context
) VALUES (
    %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
    %s::jsonb, %s::json, %s::jsonb, %s::json, %s, %s, %s, %s, %s, %s, %s, %s, %s
)

-- insert_tagged_flow_run --
-- the 33 columns of insert_flow_run, for a run with tags: the insert, one
-- flow_run_tags row per distinct tag (with the run's created and seq), and the
-- NOTIFY of a queued run (sent at commit), in one statement
WITH inserted AS (
    {insert_flow_run}
    RETURNING id, seq, created, tags, state, work_queue
), tagged AS (
    INSERT INTO flow_run_tags (created, seq, run_id, tag)
    SELECT DISTINCT i.created, i.seq, i.id, t.tag
    FROM inserted AS i, jsonb_array_elements_text(i.tags) AS t (tag)
)
SELECT pg_notify('legato_runs_queued', work_queue) FROM inserted
WHERE state = 'scheduled' AND work_queue IS NOT NULL

-- get_flow_run --
-- id
SELECT {flow_run_columns} FROM flow_runs WHERE id = %s

-- match_run_ids --
-- low, high, limit: ids compare byte-wise (COLLATE "C"), so [prefix, next) is
-- exactly the ids starting with prefix, as a range seek on the primary key
SELECT id FROM flow_runs WHERE id >= %s AND id < %s ORDER BY id LIMIT %s

-- match_run_ids_unbounded --
-- low, limit: for a prefix with no next string (empty, or only U+10FFFF)
SELECT id FROM flow_runs WHERE id >= %s ORDER BY id LIMIT %s

-- list_flow_runs --
-- parameters of the where_* fragments joined into {where}, then limit
SELECT {flow_run_columns} FROM flow_runs {where}
ORDER BY created DESC, seq DESC LIMIT %s

-- list_flow_runs_in_states --
-- array of states, parameters of the where_* fragments, limit, limit: the
-- newest few of each state, each an index walk in order, then merged; one
-- "state = ANY(...)" would sort every run in those states to return a few
SELECT r.* FROM unnest(%s::text[]) AS s (state)
CROSS JOIN LATERAL (
    SELECT {flow_run_columns}, seq AS run_seq FROM flow_runs
    WHERE state = s.state {and_where}
    ORDER BY created DESC, seq DESC LIMIT %s
) AS r
ORDER BY r.created DESC, r.run_seq DESC LIMIT %s

-- list_tagged_flow_runs --
-- tag, parameters of the where_created_* fragments joined into {tag_range} (each
-- with a leading AND), then those of the other where_* fragments joined into
-- {where}, then limit. The runs that carry the tag, newest first: a backward walk
-- of the (tag, created, seq) index of flow_run_tags, whose created and seq are
-- the run's own, each joined to its run by id. The subquery renames its columns
-- so that every other name means the run's column.
SELECT {flow_run_columns} FROM (
    SELECT run_id, created AS tag_created, seq AS tag_seq FROM flow_run_tags
    WHERE tag = %s {tag_range}
) AS tagged
JOIN flow_runs ON flow_runs.id = tagged.run_id {where}
ORDER BY tagged.tag_created DESC, tagged.tag_seq DESC LIMIT %s

-- list_tagged_flow_runs_in_states --
-- array of states, then the parameters of list_tagged_flow_runs up to its limit
-- ({and_where} as in list_flow_runs_in_states), limit, limit: the newest few
-- runs with the tag in each state, merged
SELECT r.* FROM unnest(%s::text[]) AS s (state)
CROSS JOIN LATERAL (
    SELECT {flow_run_columns}, tagged.tag_created, tagged.tag_seq FROM (
        SELECT run_id, created AS tag_created, seq AS tag_seq FROM flow_run_tags
        WHERE tag = %s {tag_range}
    ) AS tagged
    JOIN flow_runs ON flow_runs.id = tagged.run_id
    WHERE flow_runs.state = s.state {and_where}
    ORDER BY tagged.tag_created DESC, tagged.tag_seq DESC LIMIT %s
) AS r
ORDER BY r.tag_created DESC, r.tag_seq DESC LIMIT %s

-- where_flow_name --
flow_name = %s

-- where_parent --
parent_run_id = %s

-- where_deployment --
deployment = %s

-- where_created_after --
-- inclusive; a range on created, the column after the equality in every index
-- that orders a list (in list_tagged_flow_runs, the created of flow_run_tags)
created >= %s

-- where_created_before --
-- exclusive, so that a page ends where the next one's created_before starts
created < %s

-- flow_run_stats --
-- since, bucket seconds, since: top-level runs counted per bucket and state. The
-- epoch of an interval is numeric, so a run at a bucket's exact start is never
-- rounded into the bucket before. The created range drives the created index.
SELECT floor(extract(epoch FROM created - %s::timestamptz) / %s::integer)::bigint AS bucket,
    state COLLATE "C" AS state, count(*)
FROM flow_runs
WHERE parent_run_id IS NULL AND created >= %s
GROUP BY bucket, 2
ORDER BY bucket, 2

-- flow_duration_stats --
-- since, limit: per flow, top-level runs created at or after since that have both
-- times; the created range walks the created index, so the window's runs are read,
-- not every run
SELECT flow_name, count(*), count(*) FILTER (WHERE state IN ('failed', 'crashed')),
    avg(extract(epoch FROM end_time - start_time))::float8 AS mean_seconds,
    max(extract(epoch FROM end_time - start_time))::float8
FROM flow_runs
WHERE parent_run_id IS NULL AND created >= %s AND start_time IS NOT NULL
    AND end_time IS NOT NULL
GROUP BY flow_name
ORDER BY mean_seconds DESC, flow_name COLLATE "C"
LIMIT %s

-- get_parameters_blob --
-- id
SELECT parameters_blob FROM flow_runs WHERE id = %s

-- find_child_run --
-- parent_run_id, parent_call_key
SELECT {flow_run_columns} FROM flow_runs
WHERE parent_run_id = %s AND parent_call_key = %s
ORDER BY created DESC, seq DESC LIMIT 1

-- start_flow_run --
-- owner token, host, pid, pid_started, now (first start), now (heartbeat), id, states
UPDATE flow_runs SET
    state = 'running',
    owner_token = %s, owner_host = %s, owner_pid = %s, owner_pid_started = %s,
    start_time = coalesce(start_time, %s),
    heartbeat_at = %s,
    end_time = NULL, state_message = NULL, error = NULL, pause = NULL,
    cancel_requested = false,
    attempts = attempts + 1,
    -- a resume of a failed, crashed or cancelled run gets its flow retries again;
    -- a takeover or the next retry (pending, scheduled) keeps counting
    retries_used = CASE WHEN state IN ('failed', 'crashed', 'cancelled', 'completed')
        THEN 0 ELSE retries_used END
WHERE id = %s AND state = ANY(%s::text[])
RETURNING {flow_run_columns}

-- heartbeat_flow_run --
-- now, id, owner_token, id: (still owner, cancel requested, state, pause requested),
-- no row when there is no such run
WITH beat AS (
    UPDATE flow_runs SET heartbeat_at = %s WHERE id = %s AND owner_token = %s
    RETURNING cancel_requested, state, pause_requested
)
SELECT true, cancel_requested, state, pause_requested FROM beat
UNION ALL
SELECT false, cancel_requested, state, pause_requested FROM flow_runs
WHERE id = %s AND NOT EXISTS (SELECT FROM beat)

-- finish_flow_run --
-- state, end_time, message, error, result serializer, result, id, owner_token,
-- then the eight log arrays; returns 1 when the owner still had the run
WITH run AS (
    UPDATE flow_runs SET
        state = %s, end_time = %s, state_message = %s, error = %s::jsonb,
        result_serializer = coalesce(%s, result_serializer), result = %s
    WHERE id = %s AND owner_token = %s
    RETURNING id
), logged AS (
    {insert_log_rows}
    FROM run, {log_rows}
    ORDER BY l.n
)
SELECT count(*) FROM run

-- pause_flow_run --
-- pause JSON, id, owner_token, then the eight log arrays; the owner is released
-- so that any process may resume; returns 1 when the owner still had the run
WITH run AS (
    UPDATE flow_runs SET
        state = 'paused', pause = %s::json,
        owner_token = NULL, owner_host = NULL, owner_pid = NULL, owner_pid_started = NULL,
        heartbeat_at = NULL
    WHERE id = %s AND owner_token = %s
    RETURNING id
), logged AS (
    {insert_log_rows}
    FROM run, {log_rows}
    ORDER BY l.n
)
SELECT count(*) FROM run

-- retry_flow_run --
-- state, scheduled time, message, error, keep owner (five times), id, owner_token,
-- then the eight log arrays: a failed attempt that has flow retries left ('pending'
-- keeps the owner, 'scheduled' releases it); retries_used counts it in the store,
-- so a takeover cannot renew the budget; returns 1 when the owner still had the run
WITH run AS (
    UPDATE flow_runs SET
        state = %s, scheduled_time = coalesce(%s::timestamptz, scheduled_time),
        state_message = %s, error = %s::jsonb,
        retries_used = retries_used + 1,
        owner_token = CASE WHEN %s::boolean THEN owner_token END,
        owner_host = CASE WHEN %s::boolean THEN owner_host END,
        owner_pid = CASE WHEN %s::boolean THEN owner_pid END,
        owner_pid_started = CASE WHEN %s::boolean THEN owner_pid_started END,
        heartbeat_at = CASE WHEN %s::boolean THEN heartbeat_at END
    WHERE id = %s AND owner_token = %s
    RETURNING id
), logged AS (
    {insert_log_rows}
    FROM run, {log_rows}
    ORDER BY l.n
)
SELECT count(*) FROM run

-- reschedule_flow_run --
-- scheduled time, message, id, owner_token, then the eight log arrays; the owner
-- is released; returns 1 when the owner still had the run
WITH run AS (
    UPDATE flow_runs SET
        state = 'scheduled', scheduled_time = %s::timestamptz, state_message = %s,
        owner_token = NULL, owner_host = NULL, owner_pid = NULL, owner_pid_started = NULL,
        heartbeat_at = NULL
    WHERE id = %s AND owner_token = %s
    RETURNING id
), logged AS (
    {insert_log_rows}
    FROM run, {log_rows}
    ORDER BY l.n
)
SELECT count(*) FROM run

-- transition_flow_run --
-- state, end_time, message, error, id, states. Fencing rule: a run moved by anyone
-- but its owner to a final state or back to the queue loses its owner token, so
-- the old process fails its next write or heartbeat and stops.
UPDATE flow_runs SET state = %(state)s, end_time = %(end)s, state_message = %(message)s,
    error = %(error)s::jsonb,
    owner_token = CASE WHEN %(state)s IN ('running', 'pending', 'paused')
        THEN owner_token END
WHERE id = %(id)s AND state = ANY(%(states)s::text[])

-- transition_owned_flow_run --
-- state, end_time, message, error, id, states, expected owner_token
UPDATE flow_runs SET state = %(state)s, end_time = %(end)s, state_message = %(message)s,
    error = %(error)s::jsonb,
    owner_token = CASE WHEN %(state)s IN ('running', 'pending', 'paused')
        THEN owner_token END
WHERE id = %(id)s AND state = ANY(%(states)s::text[]) AND owner_token = %(token)s

-- request_cancellation --
-- end_time, id, id: a running run is flagged, a paused, scheduled or pending one
-- is cancelled at once (SET sees the old row, so "state" there is the old
-- state); returns the state after the call, no row when there is no such run
WITH changed AS (
    UPDATE flow_runs SET
        cancel_requested = cancel_requested OR state = 'running',
        end_time = CASE WHEN state = 'running' THEN end_time ELSE %s END,
        state_message = CASE WHEN state = 'running' THEN state_message END,
        pause = CASE WHEN state = 'running' THEN pause END,
        state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
        owner_token = CASE WHEN state = 'running' THEN owner_token END
    WHERE id = %s AND state IN ('running', 'paused', 'scheduled', 'pending', 'crashed')
    RETURNING state
)
SELECT state FROM changed
UNION ALL
SELECT state FROM flow_runs WHERE id = %s AND NOT EXISTS (SELECT FROM changed)

-- get_flow_result --
-- id
SELECT result_serializer, result FROM flow_runs WHERE id = %s

-- save_run_input --
-- flow_run_id, key, value
INSERT INTO run_inputs (flow_run_id, key, value) VALUES (%s, %s, %s::json)
ON CONFLICT (flow_run_id, key) DO UPDATE SET value = excluded.value

-- get_run_input --
-- flow_run_id, key: the JSON text exactly as saved
SELECT value::text FROM run_inputs WHERE flow_run_id = %s AND key = %s

-- task_run_insert --
-- The 23 task run columns (all but flow_run_id, taken from the fenced row),
-- then flow_run_id and owner_token for the fence: the row is written only if
-- the token still owns the flow run (no row = the run was lost).
INSERT INTO task_runs (
    id, call_key, task_name, name, state, attempts, cached, rolled_back,
    first_start, start_time, end_time, parent_task_run_id, cache_key, cache_expires_at,
    result_serializer, tags, dependencies, inputs, error, result, attempt_log,
    args_fingerprint, host, flow_run_id
)
SELECT
    %s::text, %s::text, %s::text, %s::text, %s::text, %s::integer, %s::boolean,
    %s::boolean, %s::timestamptz, %s::timestamptz, %s::timestamptz, %s::text, %s::text,
    %s::timestamptz, %s::text, %s::jsonb, %s::jsonb, %s::json, %s::jsonb, %s::bytea,
    %s::jsonb, %s::text, %s::text, f.id
FROM flow_runs AS f WHERE f.id = %s AND f.owner_token = %s
FOR SHARE
ON CONFLICT (flow_run_id, call_key) DO UPDATE SET
    id = excluded.id,
    task_name = excluded.task_name,
    name = excluded.name,
    state = excluded.state,
    attempts = excluded.attempts,
    cached = excluded.cached,
    rolled_back = excluded.rolled_back,
    first_start = coalesce(task_runs.first_start, excluded.first_start),
    start_time = excluded.start_time,
    end_time = excluded.end_time,
    parent_task_run_id = excluded.parent_task_run_id,
    cache_key = excluded.cache_key,
    cache_expires_at = excluded.cache_expires_at,
    result_serializer = excluded.result_serializer,
    tags = excluded.tags,
    dependencies = excluded.dependencies,
    inputs = excluded.inputs,
    error = excluded.error,
    result = excluded.result,
    attempt_log = excluded.attempt_log,
    args_fingerprint = excluded.args_fingerprint,
    host = excluded.host

-- record_task_run --
-- the parameters of task_run_insert: the engine's write for a task call
-- without logs or a cache entry (the usual case); rows changed 0 = lost
{task_run_insert}

-- record_task_run_with_extras --
-- the parameters of task_run_insert, then cache_key, expires_at, created (all
-- NULL for no cache entry), then the eight log arrays; returns 1 when written
WITH task AS (
    {task_run_insert}
    RETURNING id
), cached AS (
    INSERT INTO task_cache (cache_key, task_run_id, expires_at, created)
    SELECT c.cache_key, task.id, c.expires_at, c.created
    FROM task, (SELECT %s::text, %s::timestamptz, %s::timestamptz)
        AS c (cache_key, expires_at, created)
    WHERE c.cache_key IS NOT NULL
    ON CONFLICT (cache_key) DO UPDATE SET
        task_run_id = excluded.task_run_id,
        expires_at = excluded.expires_at,
        created = excluded.created
), logged AS (
    {insert_log_rows}
    FROM task, {log_rows}
    ORDER BY l.n
)
SELECT count(*) FROM task

-- get_cached_result --
-- cache_key, now
SELECT c.task_run_id, c.expires_at, t.result_serializer, t.result
FROM task_cache AS c JOIN task_runs AS t ON t.id = c.task_run_id
WHERE c.cache_key = %s AND (c.expires_at IS NULL OR c.expires_at > %s)
    AND t.state = 'completed' AND t.result IS NOT NULL

-- get_task_run --
-- id
SELECT {task_run_columns} FROM task_runs WHERE id = %s

-- find_task_run --
-- flow_run_id, call_key
SELECT {task_run_columns} FROM task_runs WHERE flow_run_id = %s AND call_key = %s

-- list_task_runs --
-- flow_run_id; never-started task runs last, ties in recording order
SELECT {task_run_columns} FROM task_runs WHERE flow_run_id = %s
ORDER BY first_start NULLS LAST, seq

-- count_task_runs --
-- flow_run_id
SELECT state, count(*) FROM task_runs WHERE flow_run_id = %s GROUP BY state

-- get_task_result --
-- id
SELECT result_serializer, result FROM task_runs WHERE id = %s

-- mark_rolled_back --
-- task run ids, owner_token, task run ids: flags the task runs only if the
-- token owns every flow run they belong to (each locked as in a fenced write);
-- returns the id of a flow run the token does not own, no row when all is well
WITH runs AS (
    SELECT DISTINCT flow_run_id FROM task_runs WHERE id = ANY(%s::text[])
), owned AS (
    SELECT f.id FROM flow_runs AS f JOIN runs ON f.id = runs.flow_run_id
    WHERE f.owner_token = %s
    FOR SHARE OF f
), lost AS (
    SELECT flow_run_id FROM runs WHERE flow_run_id NOT IN (SELECT id FROM owned) LIMIT 1
), marked AS (
    UPDATE task_runs SET rolled_back = true
    WHERE id = ANY(%s::text[]) AND NOT EXISTS (SELECT FROM lost)
)
SELECT flow_run_id FROM lost

-- append_logs --
-- the eight log arrays
{insert_log_rows}
FROM {log_rows}
ORDER BY l.n

-- read_logs --
-- flow_run_id, after_id, limit
SELECT {log_columns} FROM logs
WHERE flow_run_id = %s AND id > %s ORDER BY id LIMIT %s

-- read_task_logs --
-- flow_run_id, after_id, task_run_id, limit
SELECT {log_columns} FROM logs
WHERE flow_run_id = %s AND id > %s AND task_run_id = %s ORDER BY id LIMIT %s

-- insert_queued_flow_run --
-- the 33 columns of insert_flow_run: the insert, then a NOTIFY (sent at commit)
-- to wake the workers of its queue, in one statement
WITH inserted AS (
    INSERT INTO flow_runs (
        id, state, owner_token, flow_name, name, created, start_time, end_time,
        heartbeat_at, attempts, cancel_requested, parent_run_id, parent_call_key,
        entrypoint, flow_version, owner_host, owner_pid, owner_pid_started,
        result_serializer, state_message, tags, parameters, error, pause,
        parameters_blob, work_queue, priority, scheduled_time, deployment, idempotency_key,
        concurrency_key, concurrency_limit, trace_context
    ) VALUES (
        %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
        %s::jsonb, %s::json, %s::jsonb, %s::json, %s, %s, %s, %s, %s, %s, %s, %s, %s
    )
    RETURNING work_queue
)
SELECT pg_notify('legato_runs_queued', work_queue) FROM inserted

-- pick_flow_run --
-- queues, now (due by), ids to pass over, lapsed before (now - lease), queues.
-- Runs the claim transaction starts with: SKIP LOCKED lets claimers pass each
-- other's candidates; the row lock re-checks the WHERE against the newest row
-- version, so a run claimed meanwhile is passed over. Runs of a concurrency key
-- at its limit are left out here, and counted again under the key's lock.
-- Each probe walks an index in claim order and stops at its first claimable
-- row, so a claim costs the same at any queue depth: one probe per queue down
-- flow_runs_queued (due runs), one over the active runs (flow_runs_state) for a
-- lapsed lease; the best of those few candidates wins. A worker of k queues
-- holds k + 1 candidates locked until its claim commits (other claimers skip
-- them meanwhile); a worker of one queue, the common case, holds one or two.
WITH due AS (
    SELECT c.* FROM (SELECT DISTINCT name FROM unnest(%s::text[]) AS q (name)) AS q
    CROSS JOIN LATERAL (
        SELECT id, state, concurrency_key, concurrency_limit, priority, scheduled_time
        FROM flow_runs AS f
        WHERE state = 'scheduled' AND work_queue = q.name
            AND scheduled_time <= %s::timestamptz
            AND (concurrency_key IS NULL OR concurrency_limit > (
                SELECT count(*) FROM flow_runs AS active
                WHERE active.concurrency_key = f.concurrency_key
                    AND active.state IN ('pending', 'running')))
            AND NOT (id = ANY(%s::text[]))
        ORDER BY priority DESC, scheduled_time
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) AS c
), lapsed AS (
    SELECT id, state, concurrency_key, concurrency_limit, priority, scheduled_time
    FROM flow_runs
    WHERE state IN ('pending', 'running') AND heartbeat_at < %s::timestamptz
        AND work_queue = ANY(%s::text[])
    ORDER BY priority DESC, scheduled_time
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
SELECT id, state, concurrency_key, concurrency_limit
FROM (SELECT * FROM due UNION ALL SELECT * FROM lapsed) AS candidates
ORDER BY priority DESC, scheduled_time
LIMIT 1

-- lock_concurrency_key --
-- key: held until the claim commits, so claimers of one key count one by one
SELECT pg_advisory_xact_lock(hashtextextended(%s::text, 7106))

-- count_active_runs --
-- concurrency key
SELECT count(*) FROM flow_runs
WHERE concurrency_key = %s AND state IN ('pending', 'running')

-- take_flow_run --
-- owner token, host, pid, pid_started, now (heartbeat), id
UPDATE flow_runs SET
    state = 'pending',
    owner_token = %s, owner_host = %s, owner_pid = %s, owner_pid_started = %s,
    heartbeat_at = %s,
    state_message = CASE state WHEN 'scheduled' THEN NULL
        ELSE 'claimed again: the lease of its previous owner lapsed' END
WHERE id = %s
RETURNING {flow_run_columns}

-- acquire_lease --
-- name, holder, now, expires at. Taken when free, renewed by its holder (same
-- generation), taken over once expired (next generation). SET reads the old row.
INSERT INTO leases AS l (name, holder, generation, acquired_at, expires_at)
VALUES (%s, %s, 1, %s::timestamptz, %s::timestamptz)
ON CONFLICT (name) DO UPDATE SET
    generation = CASE WHEN l.holder = excluded.holder
        THEN l.generation ELSE l.generation + 1 END,
    acquired_at = CASE WHEN l.holder = excluded.holder
        THEN l.acquired_at ELSE excluded.acquired_at END,
    holder = excluded.holder,
    expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at <= excluded.acquired_at
RETURNING name, holder, generation, acquired_at, expires_at

-- release_lease --
-- name, holder. The row stays (expired) so that generations keep growing.
UPDATE leases SET expires_at = acquired_at WHERE name = %s AND holder = %s

-- get_lease --
-- name
SELECT name, holder, generation, acquired_at, expires_at FROM leases WHERE name = %s

-- notify --
-- channel, payload
SELECT pg_notify(%s::text, %s::text)

-- create_flow_run_once --
-- the 33 columns of insert_flow_run, then the idempotency key again. Returns
-- the run with that key (and its seq), whether this statement created it, and
-- (unused) the notification of a queued run; a created run's tags go into
-- flow_run_tags in the same statement. When another transaction inserts the
-- same key at the same moment, DO NOTHING waits for it, and this statement's
-- snapshot cannot see its row: no row comes back, and the caller reads it again.
WITH inserted AS (
    INSERT INTO flow_runs (
        id, state, owner_token, flow_name, name, created, start_time, end_time,
        heartbeat_at, attempts, cancel_requested, parent_run_id, parent_call_key,
        entrypoint, flow_version, owner_host, owner_pid, owner_pid_started,
        result_serializer, state_message, tags, parameters, error, pause,
        parameters_blob, work_queue, priority, scheduled_time, deployment, idempotency_key,
        concurrency_key, concurrency_limit, trace_context
    ) VALUES (
        %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
        %s::jsonb, %s::json, %s::jsonb, %s::json, %s, %s, %s, %s, %s, %s, %s, %s, %s
    )
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING {flow_run_columns}, seq AS run_seq
), tagged AS (
    INSERT INTO flow_run_tags (created, seq, run_id, tag)
    SELECT DISTINCT i.created, i.run_seq, i.id, t.tag
    FROM inserted AS i, jsonb_array_elements_text(i.tags) AS t (tag)
)
SELECT inserted.*, true,
    CASE WHEN inserted.state = 'scheduled' AND inserted.work_queue IS NOT NULL
        THEN (SELECT 1 FROM pg_notify('legato_runs_queued', inserted.work_queue)) END
FROM inserted
UNION ALL
SELECT {flow_run_columns}, seq, false, NULL::integer FROM flow_runs
WHERE idempotency_key = %s AND NOT EXISTS (SELECT FROM inserted)

-- find_run_by_idempotency_key --
-- key
SELECT {flow_run_columns} FROM flow_runs WHERE idempotency_key = %s

-- deployment_columns --
-- Column order read by rows.deployment_from_row.
name, id, flow_name, entrypoint, work_queue, priority, concurrency_limit,
collision_strategy, paused, catchup, created, updated, scheduled_until, description,
tags, parameters, schedules, timeout_seconds, retries, parameter_schema, deadlines

-- save_deployment --
-- the 21 columns of deployment_columns. A new version keeps the id, creation
-- time, pause switch and scheduler watermark of the one it replaces.
INSERT INTO deployments AS d ({deployment_columns})
VALUES (
    %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
    %s::jsonb, %s::json, %s::jsonb, %s, %s, %s::json, %s
)
ON CONFLICT (name) DO UPDATE SET
    flow_name = excluded.flow_name, entrypoint = excluded.entrypoint,
    work_queue = excluded.work_queue, priority = excluded.priority,
    concurrency_limit = excluded.concurrency_limit,
    collision_strategy = excluded.collision_strategy, catchup = excluded.catchup,
    updated = excluded.updated, description = excluded.description,
    tags = excluded.tags, parameters = excluded.parameters, schedules = excluded.schedules,
    timeout_seconds = excluded.timeout_seconds, retries = excluded.retries,
    parameter_schema = excluded.parameter_schema, deadlines = excluded.deadlines
RETURNING {deployment_columns}

-- get_deployment --
-- name
SELECT {deployment_columns} FROM deployments WHERE name = %s

-- list_deployments --
SELECT {deployment_columns} FROM deployments ORDER BY name

-- delete_deployment --
-- name
DELETE FROM deployments WHERE name = %s

-- set_deployment_paused --
-- paused, now, name
UPDATE deployments SET paused = %s, updated = %s WHERE name = %s

-- advance_deployment_schedule --
-- until, name, until: the watermark only moves forward
UPDATE deployments SET scheduled_until = %s::timestamptz
WHERE name = %s AND (scheduled_until IS NULL OR scheduled_until < %s::timestamptz)

-- start_claimed_flow_run --
-- the parameters of start_flow_run, then the claim's owner token
UPDATE flow_runs SET
    state = 'running',
    owner_token = %s, owner_host = %s, owner_pid = %s, owner_pid_started = %s,
    start_time = coalesce(start_time, %s),
    heartbeat_at = %s,
    end_time = NULL, state_message = NULL, error = NULL, pause = NULL,
    cancel_requested = false,
    attempts = attempts + 1,
    -- a resume of a failed, crashed or cancelled run gets its flow retries again;
    -- a takeover or the next retry (pending, scheduled) keeps counting
    retries_used = CASE WHEN state IN ('failed', 'crashed', 'cancelled', 'completed')
        THEN 0 ELSE retries_used END
WHERE id = %s AND state = ANY(%s::text[]) AND owner_token = %s
RETURNING {flow_run_columns}

-- next_due_time --
-- queues
SELECT min(scheduled_time) FROM flow_runs
WHERE state = 'scheduled' AND work_queue = ANY(%s::text[])

-- worker_columns --
-- Column order read by worker_from_row.
id, name, host, pid, concurrency, running, started, heartbeat_at, stopped_at, queues

-- save_worker --
-- the 10 columns of worker_columns
INSERT INTO workers ({worker_columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT (id) DO UPDATE SET
    running = excluded.running, heartbeat_at = excluded.heartbeat_at,
    stopped_at = excluded.stopped_at, concurrency = excluded.concurrency,
    queues = excluded.queues

-- list_workers --
-- seen since
SELECT {worker_columns} FROM workers WHERE heartbeat_at >= %s ORDER BY heartbeat_at DESC

-- delete_workers --
-- seen before
DELETE FROM workers WHERE heartbeat_at < %s

-- count_rows --
-- one count per table the status shows (exact: count(*) on each)
SELECT
    (SELECT count(*) FROM flow_runs),
    (SELECT count(*) FROM task_runs),
    (SELECT count(*) FROM logs),
    (SELECT count(*) FROM run_inputs),
    (SELECT count(*) FROM task_cache),
    (SELECT count(*) FROM deployments),
    pg_database_size(current_database())

-- prune_batch --
-- final states, cutoff (twice), limit, dry run: one batch of top-level runs that
-- ended before the cutoff, with every run below them, deleted with everything
-- that belongs to them in one statement (one transaction); SKIP LOCKED passes
-- over a run some writer holds. Returns (roots, runs, task runs, logs) counted.
WITH RECURSIVE roots AS (
    SELECT id FROM flow_runs
    WHERE parent_run_id IS NULL AND state = ANY(%s::text[])
        AND created < %s::timestamptz AND coalesce(end_time, created) < %s::timestamptz
    ORDER BY created
    LIMIT %s
    FOR UPDATE SKIP LOCKED
), family (id) AS (
    SELECT id FROM roots
    UNION
    SELECT f.id FROM flow_runs AS f JOIN family ON f.parent_run_id = family.id
), settings AS (
    SELECT %s::boolean AS dry_run
), gone_cache AS (
    DELETE FROM task_cache AS c USING task_runs AS t, settings
    WHERE NOT settings.dry_run AND t.flow_run_id IN (SELECT id FROM family)
        AND c.task_run_id = t.id
    RETURNING 1
), gone_tasks AS (
    DELETE FROM task_runs USING settings
    WHERE NOT settings.dry_run AND flow_run_id IN (SELECT id FROM family)
    RETURNING 1
), gone_logs AS (
    DELETE FROM logs USING settings
    WHERE NOT settings.dry_run AND flow_run_id IN (SELECT id FROM family)
    RETURNING 1
), gone_inputs AS (
    DELETE FROM run_inputs USING settings
    WHERE NOT settings.dry_run AND flow_run_id IN (SELECT id FROM family)
    RETURNING 1
), gone_artifacts AS (
    DELETE FROM artifacts USING settings
    WHERE NOT settings.dry_run AND flow_run_id IN (SELECT id FROM family)
    RETURNING 1
), gone_tags AS (
    DELETE FROM flow_run_tags USING settings
    WHERE NOT settings.dry_run AND run_id IN (SELECT id FROM family)
    RETURNING 1
), gone_llm_calls AS (
    DELETE FROM llm_calls USING settings
    WHERE NOT settings.dry_run AND flow_run_id IN (SELECT id FROM family)
    RETURNING 1
), gone_llm_streams AS (
    DELETE FROM llm_streams USING settings
    WHERE NOT settings.dry_run AND flow_run_id IN (SELECT id FROM family)
    RETURNING 1
), gone_runs AS (
    DELETE FROM flow_runs USING settings
    WHERE NOT settings.dry_run AND id IN (SELECT id FROM family)
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM roots),
    (SELECT count(*) FROM family),
    (SELECT count(*) FROM task_runs WHERE flow_run_id IN (SELECT id FROM family)),
    (SELECT count(*) FROM logs WHERE flow_run_id IN (SELECT id FROM family)),
    (SELECT count(*) FROM gone_cache) + (SELECT count(*) FROM gone_tasks)
        + (SELECT count(*) FROM gone_logs) + (SELECT count(*) FROM gone_inputs)
        + (SELECT count(*) FROM gone_tags) + (SELECT count(*) FROM gone_runs)
        + (SELECT count(*) FROM gone_artifacts) + (SELECT count(*) FROM gone_llm_calls)
        + (SELECT count(*) FROM gone_llm_streams)

-- set_limit --
-- name, slots, per_seconds, now
INSERT INTO limits (name, slots, per_seconds, created)
VALUES (%s, %s, %s::double precision, %s::timestamptz)
ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, per_seconds = excluded.per_seconds
RETURNING name, slots, per_seconds

-- list_limits --
-- now, names (or NULL for all)
SELECT l.name, l.slots, l.per_seconds,
    (SELECT count(*) FROM limit_slots AS s WHERE s.name = l.name AND s.expires_at > %s)
FROM limits AS l
WHERE %s::text[] IS NULL OR l.name = ANY(%s::text[])
ORDER BY l.name

-- delete_limit --
-- name, name: the limit and its slots
WITH gone_slots AS (DELETE FROM limit_slots WHERE name = %s)
DELETE FROM limits WHERE name = %s

-- lock_limit --
-- name: the limit row, locked so that claimers of its slots count one at a time
SELECT slots, per_seconds FROM limits WHERE name = %s FOR UPDATE

-- drop_expired_slots --
-- name, now
DELETE FROM limit_slots WHERE name = %s AND expires_at <= %s

-- holds_slot --
-- name, holder
SELECT 1 FROM limit_slots WHERE name = %s AND holder = %s

-- count_slots --
-- name
SELECT count(*) FROM limit_slots WHERE name = %s

-- insert_slot --
-- name, holder, now, expires_at
INSERT INTO limit_slots (name, holder, acquired_at, expires_at) VALUES (%s, %s, %s, %s)

-- renew_slots --
-- expires_at, holders
UPDATE limit_slots SET expires_at = %s
WHERE holder = ANY(%s::text[])
    AND name IN (SELECT name FROM limits WHERE per_seconds IS NULL)

-- release_slots --
-- holder: returns the number of slots given back, notifying when any were
WITH gone AS (
    DELETE FROM limit_slots
    WHERE holder = %s AND name IN (SELECT name FROM limits WHERE per_seconds IS NULL)
    RETURNING 1
)
SELECT count(*), CASE WHEN count(*) > 0
    THEN (SELECT 1 FROM pg_notify('legato_limit_slots_freed', '')) END
FROM gone

-- insert_variable --
-- name, value, tags, now, now: nothing when the name is taken
INSERT INTO variables (name, value, tags, created, updated)
VALUES (%s, %s, %s::text[], %s, %s)
ON CONFLICT (name) DO NOTHING
RETURNING name

-- upsert_variable --
-- name, value, tags, now, now
INSERT INTO variables (name, value, tags, created, updated)
VALUES (%s, %s, %s::text[], %s, %s)
ON CONFLICT (name) DO UPDATE
    SET value = excluded.value, tags = excluded.tags, updated = excluded.updated
RETURNING name

-- get_variable --
-- name
SELECT name, value, tags, created, updated FROM variables WHERE name = %s

-- list_variables --
SELECT name, value, tags, created, updated FROM variables ORDER BY name

-- delete_variable --
-- name
DELETE FROM variables WHERE name = %s

-- insert_artifact --
-- id, key, type, data, description, flow_run_id, task_run_id, now: an id seen
-- before (the same call replayed on resume) is kept as it is
INSERT INTO artifacts (id, key, type, data, description, flow_run_id, task_run_id, created)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING

-- update_artifact --
-- data, description (NULL keeps it), id, type
UPDATE artifacts SET data = %s, description = COALESCE(%s, description)
WHERE id = %s AND type = %s

-- list_artifacts --
-- limit: newest first
SELECT id, key, type, data, description, flow_run_id, task_run_id, created FROM artifacts
ORDER BY created DESC, id DESC LIMIT %s

-- list_artifacts_by_key --
-- key, limit: newest first
SELECT id, key, type, data, description, flow_run_id, task_run_id, created FROM artifacts
WHERE key = %s ORDER BY created DESC, id DESC LIMIT %s

-- list_artifacts_by_run --
-- flow_run_id, limit: oldest first (the order the run made them)
SELECT id, key, type, data, description, flow_run_id, task_run_id, created FROM artifacts
WHERE flow_run_id = %s ORDER BY created, id LIMIT %s

-- insert_transaction_record --
-- key, flow_run_id, committed_at, payload: a key committed before is kept as it is
INSERT INTO transaction_records (key, flow_run_id, committed_at, payload)
VALUES (%s, %s, %s, %s)
ON CONFLICT (key) DO NOTHING

-- get_transaction_record --
-- key
SELECT key, flow_run_id, committed_at, payload FROM transaction_records WHERE key = %s

-- delete_transaction_record --
-- key
DELETE FROM transaction_records WHERE key = %s

-- event_columns --
seq, id, event, occurred, received, resource, related, payload, follows

-- insert_event --
-- id, event, occurred, resource_id, resource, related, payload, follows: an id stored
-- before is kept as it is (no row returned)
INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload,
                    follows)
VALUES (%s, %s, %s, clock_timestamp(), %s, %s::jsonb, %s::jsonb, %s::jsonb, %s)
ON CONFLICT (id) DO NOTHING
RETURNING seq

-- get_event --
-- id
SELECT {event_columns} FROM events WHERE id = %s

-- read_events --
-- after (txid, seq), limit: only transactions older than every open one, in
-- (txid, seq) order, so nothing a reader has passed can commit behind it
-- (the text column has its own name: ORDER BY txid must sort the xid8 column, not
-- its text, or '1000' sorts before '999' and a reader skips events)
SELECT {event_columns}, txid::text AS txid_text FROM events
WHERE (txid, seq) > (%s::xid8, %s) AND txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY txid, seq LIMIT %s

-- events_cursor --
-- the oldest open transaction: every event of an older one was stored before now
SELECT pg_snapshot_xmin(pg_current_snapshot())::text

-- list_events --
-- {where} is built from the filters; then limit. Newest first.
SELECT {event_columns} FROM events {where} ORDER BY seq DESC LIMIT %s

-- prune_events --
-- received_before, batch size (event_resources rows go with them); how many went
WITH gone AS (
    DELETE FROM events WHERE seq IN (
        SELECT seq FROM events WHERE received < %s ORDER BY seq LIMIT %s
    ) RETURNING seq
), resources AS (
    DELETE FROM event_resources WHERE seq IN (SELECT seq FROM gone)
)
SELECT count(*) FROM gone

-- upsert_notification_channel --
-- name, type, config, created, updated: replaces the type and config, keeps created
INSERT INTO notification_channels (name, type, config, created, updated) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET type = excluded.type, config = excluded.config,
                                 updated = excluded.updated
RETURNING name

-- insert_notification_channel --
-- name, type, config, created, updated: a name taken before is kept as it is (no row returned)
INSERT INTO notification_channels (name, type, config, created, updated) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (name) DO NOTHING
RETURNING name

-- get_notification_channel --
-- name
SELECT name, type, config, created, updated FROM notification_channels WHERE name = %s

-- list_notification_channels --
SELECT name, type, config, created, updated FROM notification_channels ORDER BY name

-- delete_notification_channel --
-- name
DELETE FROM notification_channels WHERE name = %s

-- delivery_columns --
id, channel, idempotency_key, subject, body, payload, state, attempts, next_attempt_at,
last_error, created, delivered_at, group_key

-- insert_delivery --
-- channel, idempotency_key, subject, body, payload, next_attempt_at, created, group_key:
-- a key enqueued before is kept as it is (no row returned)
INSERT INTO notification_deliveries (channel, idempotency_key, subject, body, payload, state,
                                     next_attempt_at, created, group_key)
VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id

-- delivery_id_by_key --
-- idempotency_key
SELECT id FROM notification_deliveries WHERE idempotency_key = %s

-- get_delivery --
-- id
SELECT {delivery_columns} FROM notification_deliveries WHERE id = %s

-- claim_due_deliveries --
-- owner, lease expiry, now, now, limit: the oldest open delivery of each channel, when it
-- is due and not held by a live lease (one in flight per channel, in id order)
UPDATE notification_deliveries
SET state = 'sending', lease_owner = %s, lease_expires = %s, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM notification_deliveries
    WHERE id IN (
        SELECT min(id) FROM notification_deliveries
        WHERE state IN ('pending', 'sending') GROUP BY channel
    )
    AND next_attempt_at <= %s AND (state = 'pending' OR lease_expires <= %s)
    ORDER BY next_attempt_at, id LIMIT %s
)
RETURNING {delivery_columns}

-- mark_delivery_delivered --
-- delivered_at, id, owner: only by the sender holding it
UPDATE notification_deliveries
SET state = 'delivered', delivered_at = %s, lease_owner = NULL, lease_expires = NULL
WHERE id = %s AND lease_owner = %s AND state = 'sending'

-- mark_delivery_retry --
-- next_attempt_at, last_error, id, owner: back to pending until next_attempt_at
UPDATE notification_deliveries
SET state = 'pending', next_attempt_at = %s, last_error = %s, lease_owner = NULL,
    lease_expires = NULL
WHERE id = %s AND lease_owner = %s AND state = 'sending'

-- mark_delivery_dead --
-- last_error, id, owner: given up (the dead letter keeps its last error)
UPDATE notification_deliveries
SET state = 'dead', last_error = %s, lease_owner = NULL, lease_expires = NULL
WHERE id = %s AND lease_owner = %s AND state = 'sending'

-- list_deliveries --
-- {where} is built from the filters; then limit. Newest first.
SELECT {delivery_columns} FROM notification_deliveries {where} ORDER BY id DESC LIMIT %s

-- lock_delivery_claims --
-- held until the claiming transaction ends: claimers take turns, each seeing the last one's
-- claims, so no delivery is claimed twice and a channel has one in flight
SELECT pg_advisory_xact_lock(hashtextextended('legato.notify.claim', 7107))

-- ---------------------------------------------------------------------------
-- Automations (base_automations.AutomationOps)

-- upsert_automation --
-- id, name, enabled, spec, created, updated: a replacement keeps id and created
INSERT INTO automations (id, name, enabled, spec, created, updated)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET
    enabled = excluded.enabled, spec = excluded.spec, updated = excluded.updated
RETURNING id, name, enabled, spec, created, updated

-- get_automation --
SELECT id, name, enabled, spec, created, updated FROM automations WHERE name = %s

-- list_automations --
SELECT id, name, enabled, spec, created, updated FROM automations ORDER BY name

-- automations_version --
-- changes with every create, update, pause, resume (each sets `updated`) and delete
SELECT count(*)::text || ':' || coalesce(max(updated), 0)::text FROM automations

-- set_automation_enabled --
-- enabled, updated, name
UPDATE automations SET enabled = %s, updated = %s WHERE name = %s

-- delete_automation_actions --
DELETE FROM automation_actions WHERE automation_id = %s

-- delete_automation_firings --
DELETE FROM automation_firings WHERE automation_id = %s

-- delete_automation_buckets --
-- id, id: its buckets and those of its parts (id#n)
DELETE FROM automation_buckets WHERE automation_id = %s OR automation_id LIKE %s || '#%%'

-- delete_automation --
DELETE FROM automations WHERE id = %s

-- get_evaluator_cursor --
SELECT cursor FROM evaluator_cursor WHERE name = %s

-- insert_evaluator_cursor --
-- name, cursor, updated: only when the evaluator never committed before
INSERT INTO evaluator_cursor (name, cursor, updated) VALUES (%s, %s, %s)
ON CONFLICT (name) DO NOTHING

-- update_evaluator_cursor --
-- cursor, updated, name, expected cursor: compare-and-set
UPDATE evaluator_cursor SET cursor = %s, updated = %s WHERE name = %s AND cursor = %s

-- get_bucket --
SELECT automation_id, bucket_key, opened_at, count, event_ids, expires_at
FROM automation_buckets WHERE automation_id = %s AND bucket_key = %s

-- list_buckets --
SELECT automation_id, bucket_key, opened_at, count, event_ids, expires_at
FROM automation_buckets WHERE automation_id = %s ORDER BY opened_at LIMIT %s

-- expired_buckets --
-- now, limit
SELECT automation_id, bucket_key, opened_at, count, event_ids, expires_at
FROM automation_buckets WHERE expires_at IS NOT NULL AND expires_at <= %s
ORDER BY expires_at LIMIT %s

-- upsert_bucket --
INSERT INTO automation_buckets (automation_id, bucket_key, opened_at, count, event_ids, expires_at)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (automation_id, bucket_key) DO UPDATE SET
    opened_at = excluded.opened_at, count = excluded.count,
    event_ids = excluded.event_ids, expires_at = excluded.expires_at

-- delete_bucket --
DELETE FROM automation_buckets WHERE automation_id = %s AND bucket_key = %s

-- insert_firing --
INSERT INTO automation_firings (id, automation_id, fired_at, bucket_key, event_ids, reason)
VALUES (%s, %s, %s, %s, %s, %s)

-- insert_action --
-- firing_id, action_index, idempotency_key, automation_id, spec, next_attempt_at
INSERT INTO automation_actions (firing_id, action_index, idempotency_key, automation_id,
                                spec, state, attempts, next_attempt_at, result)
VALUES (%s, %s, %s, %s, %s, 'pending', 0, %s, NULL)

-- list_firings --
-- automation_id, limit: newest first
SELECT id, automation_id, fired_at, bucket_key, event_ids, reason
FROM automation_firings WHERE automation_id = %s ORDER BY fired_at DESC, id DESC LIMIT %s

-- count_firings --
SELECT count(*) FROM automation_firings WHERE automation_id = %s

-- firing_actions --
SELECT firing_id, action_index, spec, state, attempts, next_attempt_at, result, automation_id
FROM automation_actions WHERE firing_id = %s ORDER BY action_index

-- due_actions --
-- now, limit
SELECT firing_id, action_index, spec, state, attempts, next_attempt_at, result, automation_id
FROM automation_actions WHERE state = 'pending' AND next_attempt_at <= %s
ORDER BY next_attempt_at, firing_id, action_index LIMIT %s

-- finish_action --
-- state, attempts, result, next_attempt_at, firing_id, action_index
UPDATE automation_actions SET state = %s, attempts = %s, result = %s, next_attempt_at = %s
WHERE firing_id = %s AND action_index = %s

-- insert_webhook --
-- slug, description, template, auth, secret_env, secret, enabled, now, now: nothing
-- when the slug is taken
INSERT INTO webhooks (slug, description, template, auth, secret_env, secret, enabled,
                      created, updated)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (slug) DO NOTHING
RETURNING slug

-- upsert_webhook --
-- slug, description, template, auth, secret_env, secret, enabled, now, now: an
-- overwritten webhook keeps its created time
INSERT INTO webhooks (slug, description, template, auth, secret_env, secret, enabled,
                      created, updated)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (slug) DO UPDATE
    SET description = excluded.description, template = excluded.template,
        auth = excluded.auth, secret_env = excluded.secret_env, secret = excluded.secret,
        enabled = excluded.enabled, updated = excluded.updated
RETURNING slug

-- get_webhook --
-- slug
SELECT slug, description, template, auth, secret_env, secret, enabled, created, updated
FROM webhooks WHERE slug = %s

-- list_webhooks --
SELECT slug, description, template, auth, secret_env, secret, enabled, created, updated
FROM webhooks ORDER BY slug

-- set_webhook_enabled --
-- enabled, now, slug
UPDATE webhooks SET enabled = %s, updated = %s WHERE slug = %s

-- delete_webhook --
-- slug
DELETE FROM webhooks WHERE slug = %s

-- list_late_runs --
-- due_before, due_after, limit: scheduled runs past due, earliest first (the partial
-- index flow_runs_scheduled_due)
SELECT {flow_run_columns} FROM flow_runs
WHERE state = 'scheduled' AND scheduled_time <= %s AND scheduled_time >= %s
ORDER BY scheduled_time LIMIT %s

-- add_run_deadline --
-- run_id, idx, reference, within_seconds, action, due_at
INSERT INTO flow_run_deadlines (run_id, idx, reference, within_seconds, action, due_at)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (run_id, idx) DO NOTHING

-- list_run_deadlines --
-- run_id
SELECT run_id, idx, reference, within_seconds, action, due_at, fired_at
FROM flow_run_deadlines WHERE run_id = %s ORDER BY idx

-- due_deadlines --
-- now, limit: armed, unfired, due, of runs that exist and are not final
SELECT d.run_id, d.idx, d.reference, d.within_seconds, d.action, d.due_at, d.fired_at
FROM flow_run_deadlines AS d JOIN flow_runs AS fr ON fr.id = d.run_id
WHERE d.fired_at IS NULL AND d.due_at IS NOT NULL AND d.due_at <= %s
  AND fr.state NOT IN ('completed', 'failed', 'crashed', 'cancelled')
ORDER BY d.due_at LIMIT %s

-- fire_deadline --
-- fired_at, run_id, idx: compare-and-set (the deadline's row lock orders this against
-- a second sweeper and against the run's end disarming it); a row (the action) only
-- when this call fired it
UPDATE flow_run_deadlines AS d SET fired_at = %s
FROM flow_runs AS fr
WHERE d.run_id = %s AND d.idx = %s AND d.fired_at IS NULL AND d.due_at IS NOT NULL
  AND fr.id = d.run_id AND fr.state NOT IN ('completed', 'failed', 'crashed', 'cancelled')
RETURNING d.action

-- list_finished_runs --
-- index start (received), since, limit: runs in a final state that ended at or after
-- `since`, found through their final-state events (events (event, seq)), latest first
SELECT {flow_run_columns} FROM flow_runs
WHERE id IN (
    SELECT substr(resource_id, 17) FROM events
    WHERE event IN ('legato.flow-run.Completed', 'legato.flow-run.Failed',
                    'legato.flow-run.Crashed', 'legato.flow-run.Cancelled')
      AND seq >= coalesce(
          (SELECT seq FROM events WHERE received >= %s ORDER BY received LIMIT 1),
          9223372036854775807))
  AND state IN ('completed', 'failed', 'crashed', 'cancelled') AND end_time >= %s
ORDER BY end_time DESC LIMIT %s

-- list_started_runs --
-- index start (received), since, limit: scheduled runs that started at or after `since`,
-- found through their Running events (events (event, seq)), latest first
SELECT {flow_run_columns} FROM flow_runs
WHERE id IN (
    SELECT substr(resource_id, 17) FROM events
    WHERE event = 'legato.flow-run.Running'
      AND seq >= coalesce(
          (SELECT seq FROM events WHERE received >= %s ORDER BY received LIMIT 1),
          9223372036854775807))
  AND scheduled_time IS NOT NULL AND start_time >= %s
ORDER BY start_time DESC LIMIT %s

-- put_alert_state --
-- alert, key, data, expires_at, updated
INSERT INTO alert_states (alert, key, data, expires_at, updated) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (alert, key) DO UPDATE
    SET data = excluded.data, expires_at = excluded.expires_at, updated = excluded.updated

-- get_alert_state --
-- alert, key
SELECT alert, key, data, expires_at, updated FROM alert_states WHERE alert = %s AND key = %s

-- list_alert_states --
-- alert
SELECT alert, key, data, expires_at, updated FROM alert_states WHERE alert = %s ORDER BY key

-- due_alert_states --
-- now, limit (index alert_states_due)
SELECT alert, key, data, expires_at, updated FROM alert_states
WHERE expires_at IS NOT NULL AND expires_at <= %s
ORDER BY expires_at, alert, key LIMIT %s

-- delete_alert_state --
-- alert, key
DELETE FROM alert_states WHERE alert = %s AND key = %s

-- delete_alert_states --
-- alert
DELETE FROM alert_states WHERE alert = %s

-- request_pause --
-- id, id: flags a running run to pause at its next task boundary (legato suspend);
-- the run's state, no row when there is no such run
WITH flagged AS (
    UPDATE flow_runs SET pause_requested = true WHERE id = %s AND state = 'running'
    RETURNING state
)
SELECT state FROM flagged
UNION ALL
SELECT state FROM flow_runs WHERE id = %s AND NOT EXISTS (SELECT FROM flagged)

-- metric_flow_run_counts --
-- the aggregate run counts folded from the events index (one row per flow,
-- deployment, queue and state: never a scan of the runs)
SELECT flow_name, deployment, work_queue, state, entered, current FROM flow_run_counts

-- metric_flow_run_histograms --
-- the duration, lateness and task duration histogram buckets (folded; lateness by a trigger)
SELECT metric, a, b, le, n, total FROM flow_run_histograms

-- metric_queue_oldest --
-- the oldest scheduled time of the runs waiting in each queue (the partial index
-- of waiting runs)
SELECT work_queue, min(scheduled_time) FROM flow_runs
WHERE state = 'scheduled' AND work_queue IS NOT NULL
GROUP BY work_queue

-- metric_task_run_counts --
-- the task run counts kept when flow runs end (one row per flow, task name and state)
SELECT flow_name, task_name, state, n, cached FROM task_run_counts WHERE n <> 0

-- metric_task_replay_counts --
-- the task calls answered from the journal, per flow name (added at each attempt end)
SELECT flow_name, n FROM task_replay_counts WHERE n <> 0

-- add_task_replays --
-- n, flow_run_id: an attempt's replayed calls, under its flow's name
INSERT INTO task_replay_counts AS c (flow_name, n)
SELECT flow_name, %s FROM flow_runs WHERE id = %s
ON CONFLICT (flow_name) DO UPDATE SET n = c.n + excluded.n

-- lock_event_count_mark --
-- the mark of the events counted into event_counts, locked until the transaction ends
-- (one counter at a time: two servers scraping together do not count twice)
INSERT INTO event_count_mark (id, txid, seq) VALUES (1, '0'::xid8, 0)
ON CONFLICT (id) DO UPDATE SET seq = event_count_mark.seq
RETURNING txid::text, seq

-- count_new_events --
-- after (txid, seq), limit: the events after the mark, of transactions older than
-- every open one (so nothing can commit behind the mark), at most limit of them, per
-- name, with the newest (txid, seq) of the batch
WITH batch AS (
    SELECT txid, seq, event FROM events
    WHERE (txid, seq) > (%s::xid8, %s) AND txid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY txid, seq LIMIT %s
), newest AS (
    SELECT txid, seq FROM batch ORDER BY txid DESC, seq DESC LIMIT 1
)
SELECT b.event, count(*), (SELECT txid::text FROM newest), (SELECT seq FROM newest)
FROM batch AS b GROUP BY b.event

-- add_event_count --
-- event, n
INSERT INTO event_counts AS c (event, n) VALUES (%s, %s)
ON CONFLICT (event) DO UPDATE SET n = c.n + excluded.n

-- set_event_count_mark --
-- txid, seq
UPDATE event_count_mark SET txid = %s::xid8, seq = %s WHERE id = 1

-- metric_event_counts --
-- the events counted per name
SELECT event, n FROM event_counts

-- flow_run_metric_mark --
-- the mark of the events folded into the flow run metric tables (not locked)
SELECT txid::text, seq FROM flow_run_metric_mark WHERE id = 1

-- lock_flow_run_metric_mark --
-- the mark of the events folded into the flow run metric tables, locked until the
-- transaction ends (one fold at a time: two servers scraping together do not fold twice)
INSERT INTO flow_run_metric_mark (id, txid, seq) VALUES (1, '0'::xid8, 0)
ON CONFLICT (id) DO UPDATE SET seq = flow_run_metric_mark.seq
RETURNING txid::text, seq

-- flow_run_metric_batch_end --
-- after (txid, seq), limit: the newest (txid, seq) of the next batch of events to fold,
-- of transactions older than every open one (so nothing can commit behind it)
WITH batch AS (
    SELECT txid, seq FROM events
    WHERE (txid, seq) > (%s::xid8, %s) AND txid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY txid, seq LIMIT %s
)
SELECT txid::text, seq FROM batch ORDER BY txid DESC, seq DESC LIMIT 1

-- flow_run_metric_events --
-- after (txid, seq), through (txid, seq): the flow run state events in between, with
-- what the fold reads of their run: its flow, deployment and queue, or NULL and the
-- event's related resources once it was deleted; its duration
SELECT substr(e.resource_id, 17), e.payload ->> 'from', e.payload ->> 'to', f.flow_name,
       coalesce(f.deployment, ''), coalesce(f.work_queue, ''),
       CASE WHEN f.id IS NULL THEN e.related END,
       extract(epoch FROM f.end_time - f.start_time)::double precision
FROM events AS e LEFT JOIN flow_runs AS f ON f.id = substr(e.resource_id, 17)
WHERE (e.txid, e.seq) > (%s::xid8, %s) AND (e.txid, e.seq) <= (%s::xid8, %s)
  AND e.resource_id LIKE 'legato.flow-run.%%' AND e.event LIKE 'legato.flow-run.%%'
  AND e.payload ->> 'to' = lower(substr(e.event, 17))
ORDER BY e.txid, e.seq

-- flow_run_metric_tasks --
-- ids (an array of flow run ids): their task runs in a final state that ended after
-- their run's mark: run id, task name, state, cached, duration, end
SELECT t.flow_run_id, t.task_name, t.state, t.cached,
       extract(epoch FROM t.end_time - t.start_time)::double precision, t.end_time
FROM task_runs AS t LEFT JOIN task_run_marks AS m ON m.flow_run_id = t.flow_run_id
WHERE t.flow_run_id = ANY(%s::text[])
  AND t.state IN ('completed', 'failed', 'crashed', 'cancelled')
  AND t.end_time > coalesce(m.counted_until, '-infinity'::timestamptz)

-- set_task_run_mark --
-- flow_run_id, counted_until
INSERT INTO task_run_marks AS m (flow_run_id, counted_until) VALUES (%s, %s)
ON CONFLICT (flow_run_id) DO UPDATE
SET counted_until = greatest(m.counted_until, excluded.counted_until)

-- add_flow_run_counts --
-- flow, deployment, queue, state, entered, current: deltas
INSERT INTO flow_run_counts AS c (flow_name, deployment, work_queue, state, entered, current)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (flow_name, deployment, work_queue, state) DO UPDATE
SET entered = c.entered + excluded.entered, current = c.current + excluded.current

-- add_flow_run_histogram --
-- metric, a, b, le, n, total: deltas
INSERT INTO flow_run_histograms AS h (metric, a, b, le, n, total)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (metric, a, b, le) DO UPDATE SET n = h.n + excluded.n, total = h.total + excluded.total

-- add_task_run_counts --
-- flow, task, state, n, cached: deltas
INSERT INTO task_run_counts AS c (flow_name, task_name, state, n, cached)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (flow_name, task_name, state) DO UPDATE
SET n = c.n + excluded.n, cached = c.cached + excluded.cached

-- set_flow_run_metric_mark --
-- txid, seq
UPDATE flow_run_metric_mark SET txid = %s::xid8, seq = %s WHERE id = 1

-- AI: model calls and prompts

-- llm_call_columns --
-- Column order of legato.store.base_llm.llm_call_params / llm_call_from_row.
id, flow_run_id, call_key, try_number, provider, model, outcome, started,
latency_seconds, input_tokens, output_tokens, cached_tokens, reasoning_tokens,
cost_usd, finish_reason, params, request, response, error, prompt_name,
prompt_version, copied_from

-- insert_llm_call --
-- flow_run_id and owner_token for the fence, then the 22 llm_call_columns (the
-- flow_run_id among them is taken from the fenced row): written only if the token
-- still owns the run; a try already recorded is kept (first write wins). Returns
-- the number of fenced runs found: 0 = the run is someone else's, nothing written.
WITH fence AS (
    SELECT id FROM flow_runs WHERE id = %s AND owner_token = %s FOR SHARE
), inserted AS (
    INSERT INTO llm_calls ({llm_call_columns})
    SELECT c.id, fence.id, c.call_key, c.try_number, c.provider, c.model, c.outcome,
           c.started, c.latency_seconds, c.input_tokens, c.output_tokens, c.cached_tokens,
           c.reasoning_tokens, c.cost_usd, c.finish_reason, c.params, c.request,
           c.response, c.error, c.prompt_name, c.prompt_version, c.copied_from
    FROM fence, (SELECT %s::text, %s::text, %s::text, %s::integer, %s::text, %s::text,
                        %s::text, %s::timestamptz, %s::double precision, %s::bigint,
                        %s::bigint, %s::bigint, %s::bigint, %s::double precision, %s::text,
                        %s::text, %s::text, %s::text, %s::text, %s::text, %s::text,
                        %s::text) AS c ({llm_call_columns})
    ON CONFLICT (flow_run_id, call_key, try_number) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM fence

-- list_llm_calls --
-- flow_run_id
SELECT {llm_call_columns} FROM llm_calls WHERE flow_run_id = %s
ORDER BY started, call_key, try_number

-- list_llm_call_tries --
-- flow_run_id, call_key
SELECT {llm_call_columns} FROM llm_calls WHERE flow_run_id = %s AND call_key = %s
ORDER BY started, call_key, try_number

-- llm_usage_select --
-- group ('flow_run', 'flow', 'deployment' or 'model') first: the group, tries, the
-- four token sums and the cost of the tries of llm_calls AS l joined to flow_runs AS f
SELECT (CASE %s::text WHEN 'flow_run' THEN l.flow_run_id
                      WHEN 'flow' THEN coalesce(f.flow_name, '')
                      WHEN 'deployment' THEN coalesce(f.deployment, '')
                      ELSE l.model END) COLLATE "C",
       count(*), sum(l.input_tokens), sum(l.output_tokens), sum(l.cached_tokens),
       sum(l.reasoning_tokens), coalesce(sum(l.cost_usd), 0)

-- llm_usage_totals --
-- group, since (or NULL for all): over every run (the started index)
{llm_usage_select}
FROM llm_calls AS l LEFT JOIN flow_runs AS f ON f.id = l.flow_run_id
WHERE l.started >= coalesce(%s::timestamptz, '-infinity')
GROUP BY 1 ORDER BY 7 DESC, 1

-- llm_usage_totals_of_runs --
-- group, run ids (an array), since (or NULL): a seek per run
{llm_usage_select}
FROM llm_calls AS l LEFT JOIN flow_runs AS f ON f.id = l.flow_run_id
WHERE l.flow_run_id = ANY(%s::text[])
  AND l.started >= coalesce(%s::timestamptz, '-infinity')
GROUP BY 1 ORDER BY 7 DESC, 1

-- llm_usage_counters --
SELECT flow_name, deployment, provider, model, calls, input_tokens, output_tokens,
       cached_tokens, reasoning_tokens, cost_usd
FROM llm_usage_counters ORDER BY flow_name, deployment, provider, model

-- insert_prompt --
-- name, version, template, created: a version stored already is kept
INSERT INTO prompts (name, version, template, created)
VALUES (%s, %s, %s, %s::timestamptz)
ON CONFLICT (name, version) DO NOTHING

-- get_prompt_version --
-- name, version
SELECT name, version, template, created FROM prompts WHERE name = %s AND version = %s

-- get_prompt_prefix --
-- name, prefix, prefix, limit: the versions starting with the prefix
SELECT name, version, template, created FROM prompts
WHERE name = %s AND substr(version, 1, length(%s::text)) = %s::text
ORDER BY version LIMIT %s

-- get_newest_prompt --
-- name
SELECT name, version, template, created FROM prompts WHERE name = %s
ORDER BY created DESC, seq DESC LIMIT 1

-- list_prompt_versions --
-- name: newest first
SELECT name, version, template, created FROM prompts WHERE name = %s
ORDER BY created DESC, seq DESC

-- list_prompts --
-- each name with its number of versions and its newest one
SELECT name, versions, version, created FROM (
    SELECT name, version, created, count(*) OVER (PARTITION BY name) AS versions,
           row_number() OVER (PARTITION BY name ORDER BY created DESC, seq DESC) AS n
    FROM prompts
) AS p WHERE n = 1 ORDER BY name

-- flow_run_exists --
-- id
SELECT 1 FROM flow_runs WHERE id = %s

-- fork_task_runs --
-- call keys, new task run ids (two arrays of one length), source run id, new run id:
-- the source's task runs at those keys, copied under new ids into the new run (a
-- parent task run copied too is pointed at its copy, otherwise dropped)
WITH keys AS (
    SELECT * FROM unnest(%s::text[], %s::text[]) AS k (call_key, new_id)
), copied AS (
    SELECT k.new_id, t.*
    FROM keys AS k JOIN task_runs AS t ON t.flow_run_id = %s AND t.call_key = k.call_key
)
INSERT INTO task_runs (
    id, flow_run_id, call_key, task_name, name, state, attempts, cached, rolled_back,
    first_start, start_time, end_time, parent_task_run_id, cache_key, cache_expires_at,
    result_serializer, tags, dependencies, inputs, error, result, attempt_log,
    args_fingerprint, host
)
SELECT c.new_id, %s, c.call_key, c.task_name, c.name, c.state, c.attempts, c.cached,
       c.rolled_back, c.first_start, c.start_time, c.end_time,
       (SELECT p.new_id FROM copied AS p WHERE p.id = c.parent_task_run_id),
       c.cache_key, c.cache_expires_at, c.result_serializer, c.tags, c.dependencies,
       c.inputs, c.error, c.result, c.attempt_log, c.args_fingerprint, c.host
FROM copied AS c ORDER BY c.seq

-- fork_llm_calls --
-- new run id, source run id (copied_from), source run id, call keys (an array): the
-- source's tries at those keys or under them (key + '/'), copied under new ids
INSERT INTO llm_calls ({llm_call_columns})
SELECT md5(l.id || random()::text || clock_timestamp()::text), %s, l.call_key,
       l.try_number, l.provider, l.model, l.outcome, l.started, l.latency_seconds,
       l.input_tokens, l.output_tokens, l.cached_tokens, l.reasoning_tokens, l.cost_usd,
       l.finish_reason, l.params, l.request, l.response, l.error, l.prompt_name,
       l.prompt_version, %s
FROM llm_calls AS l
WHERE l.flow_run_id = %s
  AND EXISTS (SELECT 1 FROM unnest(%s::text[]) AS k (key)
              WHERE l.call_key = k.key
                 OR substr(l.call_key, 1, length(k.key) + 1) = k.key || '/')
ORDER BY l.started, l.call_key, l.try_number

-- write_llm_stream --
-- flow_run_id, call_key, text, updated: the call's text so far, replaced in place
INSERT INTO llm_streams (flow_run_id, call_key, text, updated)
VALUES (%s, %s, %s, %s::timestamptz)
ON CONFLICT (flow_run_id, call_key) DO UPDATE SET text = excluded.text, updated = excluded.updated

-- end_llm_stream --
DELETE FROM llm_streams WHERE flow_run_id = %s AND call_key = %s

-- list_llm_streams --
SELECT call_key, text, updated FROM llm_streams WHERE flow_run_id = %s ORDER BY call_key
