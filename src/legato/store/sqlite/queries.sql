-- Named queries of the SQLite store.
--
-- A line "-- name --" starts a block that runs until the next such line;
-- legato.store.sqlite.sql loads them into a dict once, at import. "{name}"
-- inside a block is replaced by the block of that name (shared column lists).
-- Parameters are positional "?" (cheaper to bind than named ones on the hot
-- path); each block's comment lists them in order. A list of values is bound
-- as one JSON array and read with json_each, so no SQL is built at run time
-- beyond joining the where_* fragments for list_flow_runs.

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

-- schema_object_count --
SELECT count(*) FROM sqlite_master

-- has_migrations_table --
SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'

-- schema_version --
SELECT max(version) FROM schema_migrations

-- record_migration --
-- version, applied_at
INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)

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
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
    ?, ?, ?
)

-- insert_flow_run_tags --
-- created, id, JSON tags: one row per distinct tag of a run just inserted (same
-- transaction; a run without tags has none, and skips this statement)
INSERT INTO flow_run_tags (tag, created, run_id)
SELECT DISTINCT value, ?, ? FROM json_each(?)

-- get_flow_run --
-- id
SELECT {flow_run_columns} FROM flow_runs WHERE id = ?

-- match_run_ids --
-- low, high, limit: a range on the primary key, so a prefix search is an index seek
SELECT id FROM flow_runs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?

-- list_flow_runs --
-- parameters of the where_* fragments joined into {where}, then limit; rowid last,
-- for merging the answers of one query per state in the same order
SELECT {flow_run_columns}, rowid FROM flow_runs {where}
ORDER BY created DESC, rowid DESC LIMIT ?

-- list_tagged_flow_runs --
-- tag, parameters of the where_created_* fragments joined into {tag_range} (each
-- with a leading AND), then those of the other where_* fragments joined into
-- {where}, then limit. The runs that carry the tag, newest first: a backward walk
-- of the (tag, created) index of flow_run_tags, whose created and seq order runs
-- as created and rowid do in list_flow_runs, each joined to its run by id. The
-- subquery renames its columns so that every other name means the run's column.
-- tag_seq last, for merging the answers of one query per state.
SELECT {flow_run_columns}, tagged.tag_seq FROM (
    SELECT run_id, created AS tag_created, seq AS tag_seq FROM flow_run_tags
    WHERE tag = ? {tag_range}
) AS tagged
JOIN flow_runs ON flow_runs.id = tagged.run_id {where}
ORDER BY tagged.tag_created DESC, tagged.tag_seq DESC LIMIT ?

-- where_state --
-- one state: an equality, so the (state, created) index gives the order without a sort
state = ?

-- where_flow_name --
flow_name = ?

-- where_parent --
parent_run_id = ?

-- where_deployment --
deployment = ?

-- where_child_tag --
-- one tag, when listing the children of one run (parent_run_id given): they are
-- few, so the parent index drives and each child is looked up in flow_run_tags
EXISTS (SELECT 1 FROM flow_run_tags AS t WHERE t.run_id = flow_runs.id AND t.tag = ?)

-- where_created_after --
-- inclusive; a range on created, the last column of every index that orders a list
-- (in list_tagged_flow_runs, the created of flow_run_tags)
created >= ?

-- where_created_before --
-- exclusive, so that a page ends where the next one's created_before starts
created < ?

-- flow_run_stats --
-- since, bucket seconds, since: top-level runs counted per bucket and state; the
-- CAST truncates, which floors here (never negative). "+parent_run_id" keeps the
-- planner on the created index: most runs are top-level, the created range is what
-- narrows them down.
SELECT CAST((created - ?) / ? AS INTEGER) AS bucket, state, count(*)
FROM flow_runs
WHERE +parent_run_id IS NULL AND created >= ?
GROUP BY bucket, state
ORDER BY bucket, state

-- flow_duration_stats --
-- since, limit: per flow, top-level runs created at or after since that have both
-- times; the created range walks the created index ("+parent_run_id" keeps the
-- planner off the parent index), so the window's runs are read, not every run
SELECT flow_name, count(*), sum(state IN ('failed', 'crashed')),
    avg(end_time - start_time) AS mean_seconds, max(end_time - start_time)
FROM flow_runs
WHERE +parent_run_id IS NULL AND created >= ? AND start_time IS NOT NULL
    AND end_time IS NOT NULL
GROUP BY flow_name
ORDER BY mean_seconds DESC, flow_name
LIMIT ?

-- get_parameters_blob --
-- id
SELECT parameters_blob FROM flow_runs WHERE id = ?

-- find_child_run --
-- parent_run_id, parent_call_key
SELECT {flow_run_columns} FROM flow_runs
WHERE parent_run_id = ? AND parent_call_key = ?
ORDER BY created DESC, rowid DESC LIMIT 1

-- start_flow_run --
-- owner token, host, pid, pid_started, now (first start), now (heartbeat), id, JSON states
UPDATE flow_runs SET
    state = 'running',
    owner_token = ?, owner_host = ?, owner_pid = ?, owner_pid_started = ?,
    start_time = coalesce(start_time, ?),
    heartbeat_at = ?,
    end_time = NULL, state_message = NULL, error = NULL, pause = NULL,
    cancel_requested = 0,
    attempts = attempts + 1,
    -- a resume of a failed, crashed or cancelled run gets its flow retries again;
    -- a takeover or the next retry (pending, scheduled) keeps counting
    retries_used = CASE WHEN state IN ('failed', 'crashed', 'cancelled', 'completed')
        THEN 0 ELSE retries_used END
WHERE id = ? AND state IN (SELECT value FROM json_each(?))

-- heartbeat_flow_run --
-- now, id, owner_token
UPDATE flow_runs SET heartbeat_at = ? WHERE id = ? AND owner_token = ?
RETURNING cancel_requested, state, pause_requested

-- get_cancel_state --
-- id
SELECT cancel_requested, state, pause_requested FROM flow_runs WHERE id = ?

-- finish_flow_run --
-- state, end_time, message, error, result serializer, result, id, owner_token
UPDATE flow_runs SET
    state = ?, end_time = ?, state_message = ?, error = ?,
    result_serializer = coalesce(?, result_serializer), result = ?
WHERE id = ? AND owner_token = ?

-- pause_flow_run --
-- pause JSON, id, owner_token; the owner is released so that any process may resume
UPDATE flow_runs SET
    state = 'paused', pause = ?,
    owner_token = NULL, owner_host = NULL, owner_pid = NULL, owner_pid_started = NULL,
    heartbeat_at = NULL
WHERE id = ? AND owner_token = ?

-- retry_flow_run --
-- state ('pending' keeps the owner, 'scheduled' releases it), scheduled time,
-- message, error, id, owner_token: a failed attempt that has flow retries left;
-- retries_used counts it in the store, so a takeover cannot renew the budget
UPDATE flow_runs SET
    state = ?1, scheduled_time = coalesce(?2, scheduled_time), state_message = ?3,
    error = ?4, retries_used = retries_used + 1,
    owner_token = CASE ?1 WHEN 'pending' THEN owner_token END,
    owner_host = CASE ?1 WHEN 'pending' THEN owner_host END,
    owner_pid = CASE ?1 WHEN 'pending' THEN owner_pid END,
    owner_pid_started = CASE ?1 WHEN 'pending' THEN owner_pid_started END,
    heartbeat_at = CASE ?1 WHEN 'pending' THEN heartbeat_at END
WHERE id = ?5 AND owner_token = ?6

-- reschedule_flow_run --
-- scheduled time, message, id, owner_token; the owner is released
UPDATE flow_runs SET
    state = 'scheduled', scheduled_time = ?, state_message = ?,
    owner_token = NULL, owner_host = NULL, owner_pid = NULL, owner_pid_started = NULL,
    heartbeat_at = NULL
WHERE id = ? AND owner_token = ?

-- transition_flow_run --
-- state, end_time, message, error, id, JSON from-states. Fencing rule: a run moved
-- by anyone but its owner to a final state or back to the queue loses its owner
-- token, so the old process fails its next write or heartbeat and stops.
UPDATE flow_runs SET state = ?1, end_time = ?2, state_message = ?3, error = ?4,
    owner_token = CASE WHEN ?1 IN ('running', 'pending', 'paused')
        THEN owner_token ELSE NULL END
WHERE id = ?5 AND state IN (SELECT value FROM json_each(?6))

-- transition_owned_flow_run --
-- state, end_time, message, error, id, JSON from-states, expected owner_token
UPDATE flow_runs SET state = ?1, end_time = ?2, state_message = ?3, error = ?4,
    owner_token = CASE WHEN ?1 IN ('running', 'pending', 'paused')
        THEN owner_token ELSE NULL END
WHERE id = ?5 AND state IN (SELECT value FROM json_each(?6)) AND owner_token = ?7

-- get_run_state --
-- id
SELECT state FROM flow_runs WHERE id = ?

-- set_cancel_requested --
-- id
UPDATE flow_runs SET cancel_requested = 1 WHERE id = ?

-- cancel_flow_run --
-- end_time, id
UPDATE flow_runs SET state = 'cancelled', end_time = ?, state_message = NULL, pause = NULL,
    owner_token = NULL
WHERE id = ?

-- get_flow_result --
-- id
SELECT result_serializer, result FROM flow_runs WHERE id = ?

-- save_run_input --
-- flow_run_id, key, value
INSERT INTO run_inputs (flow_run_id, key, value) VALUES (?, ?, ?)
ON CONFLICT (flow_run_id, key) DO UPDATE SET value = excluded.value

-- get_run_input --
-- flow_run_id, key
SELECT value FROM run_inputs WHERE flow_run_id = ? AND key = ?

-- journal_task_run --
-- the 23 task run columns below, then flow_run_id and owner_token for the fence:
-- the row is written only if the token still owns the flow run, so the fence
-- costs one primary-key lookup and no extra round trip (0 rows changed = lost).
-- The journal is an append-only table with no index but its rowid: a commit
-- that only appends to it writes about one page, half the cost of updating
-- task_runs and its two indexes (see fold_task_run_journal).
INSERT INTO task_run_journal (
    {task_run_journal_columns}
)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM flow_runs WHERE id = ? AND owner_token = ?)

-- task_run_journal_columns --
id, flow_run_id, call_key, task_name, name, state, attempts, cached, rolled_back,
first_start, start_time, end_time, parent_task_run_id, cache_key, cache_expires_at,
result_serializer, tags, dependencies, inputs, error, result, attempt_log, args_fingerprint,
host

-- task_run_journal_end --
-- the newest journal entry, or NULL when everything is folded
SELECT max(seq) FROM task_run_journal

-- fold_task_run_journal --
-- newest seq to fold: moves journal entries into task_runs in recording order; a
-- later entry for the same call key replaces the earlier one (upsert).
INSERT INTO task_runs (
    {task_run_journal_columns}
)
SELECT {task_run_journal_columns} FROM task_run_journal WHERE seq <= ? ORDER BY seq
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

-- clear_task_run_journal --
-- newest seq folded
DELETE FROM task_run_journal WHERE seq <= ?

-- set_cache_entry --
-- cache_key, task_run_id, expires_at, created
INSERT INTO task_cache (cache_key, task_run_id, expires_at, created) VALUES (?, ?, ?, ?)
ON CONFLICT (cache_key) DO UPDATE SET
    task_run_id = excluded.task_run_id,
    expires_at = excluded.expires_at,
    created = excluded.created

-- get_cached_result --
-- cache_key, now
SELECT c.task_run_id, c.expires_at, t.result_serializer, t.result
FROM task_cache AS c JOIN task_runs AS t ON t.id = c.task_run_id
WHERE c.cache_key = ? AND (c.expires_at IS NULL OR c.expires_at > ?)
    AND t.state = 'completed' AND t.result IS NOT NULL

-- get_task_run --
-- id
SELECT {task_run_columns} FROM task_runs WHERE id = ?

-- find_task_run --
-- flow_run_id, call_key
SELECT {task_run_columns} FROM task_runs WHERE flow_run_id = ? AND call_key = ?

-- list_task_runs --
-- flow_run_id; never-started task runs last, ties in recording order
SELECT {task_run_columns} FROM task_runs WHERE flow_run_id = ?
ORDER BY first_start NULLS LAST, seq

-- count_task_runs --
-- flow_run_id
SELECT state, count(*) FROM task_runs WHERE flow_run_id = ? GROUP BY state

-- get_task_result --
-- id
SELECT result_serializer, result FROM task_runs WHERE id = ?

-- task_run_owners --
-- JSON array of task run ids; the owner token of each one's flow run
SELECT DISTINCT t.flow_run_id, f.owner_token
FROM task_runs AS t LEFT JOIN flow_runs AS f ON f.id = t.flow_run_id
WHERE t.id IN (SELECT value FROM json_each(?))

-- mark_rolled_back --
-- JSON array of task run ids
UPDATE task_runs SET rolled_back = 1 WHERE id IN (SELECT value FROM json_each(?))

-- insert_log --
-- flow_run_id, task_run_id, timestamp, level, logger, message, trace_id, span_id
INSERT INTO logs (flow_run_id, task_run_id, timestamp, level, logger, message, trace_id, span_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)

-- read_logs --
-- flow_run_id, after_id, limit
SELECT id, flow_run_id, task_run_id, timestamp, level, logger, message, trace_id, span_id
FROM logs
WHERE flow_run_id = ? AND id > ? ORDER BY id LIMIT ?

-- read_task_logs --
-- flow_run_id, after_id, task_run_id, limit
SELECT id, flow_run_id, task_run_id, timestamp, level, logger, message, trace_id, span_id
FROM logs
WHERE flow_run_id = ? AND id > ? AND task_run_id = ? ORDER BY id LIMIT ?

-- claim_flow_run --
-- owner token, host, pid, pid_started, now (heartbeat), now (due by), JSON queues,
-- JSON queues, lapsed before (now - lease). One statement: atomic on its own.
-- Each probe walks an index in claim order and stops at its first claimable row,
-- so a claim costs the same at any queue depth: one probe per queue down
-- flow_runs_queued, one over the active runs for a lapsed lease (pinned to
-- flow_runs_state: with ANALYZE statistics the planner would scan the table);
-- the best of those few candidates wins.
UPDATE flow_runs SET
    state = 'pending',
    owner_token = ?, owner_host = ?, owner_pid = ?, owner_pid_started = ?,
    heartbeat_at = ?,
    state_message = CASE state WHEN 'scheduled' THEN NULL
        ELSE 'claimed again: the lease of its previous owner lapsed' END
WHERE id = (
    SELECT run.id FROM (
        SELECT (
            SELECT id FROM flow_runs AS f
            WHERE state = 'scheduled' AND work_queue = queue.value AND scheduled_time <= ?
                AND (concurrency_key IS NULL OR concurrency_limit > (
                    SELECT count(*) FROM flow_runs AS active
                    WHERE active.concurrency_key = f.concurrency_key
                        AND active.state IN ('pending', 'running')))
            ORDER BY priority DESC, scheduled_time LIMIT 1
        ) AS id FROM (SELECT DISTINCT value FROM json_each(?)) AS queue
        UNION ALL
        SELECT id FROM flow_runs INDEXED BY flow_runs_state
        WHERE state IN ('pending', 'running')
            AND work_queue IN (SELECT value FROM json_each(?)) AND heartbeat_at < ?
    ) AS candidate
    JOIN flow_runs AS run ON run.id = candidate.id
    ORDER BY run.priority DESC, run.scheduled_time LIMIT 1
)
RETURNING {flow_run_columns}

-- acquire_lease --
-- name, holder, now, expires at. Taken when free, renewed by its holder (same
-- generation), taken over once expired (next generation). SET reads the old row.
INSERT INTO leases (name, holder, generation, acquired_at, expires_at) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    generation = CASE WHEN leases.holder = excluded.holder
        THEN leases.generation ELSE leases.generation + 1 END,
    acquired_at = CASE WHEN leases.holder = excluded.holder
        THEN leases.acquired_at ELSE excluded.acquired_at END,
    holder = excluded.holder,
    expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= excluded.acquired_at
RETURNING name, holder, generation, acquired_at, expires_at

-- release_lease --
-- name, holder. The row stays (expired) so that generations keep growing.
UPDATE leases SET expires_at = acquired_at WHERE name = ? AND holder = ?

-- get_lease --
-- name
SELECT name, holder, generation, acquired_at, expires_at FROM leases WHERE name = ?

-- notify --
-- channel, payload
INSERT INTO notifications (channel, version, payload) VALUES (?, 1, ?)
ON CONFLICT (channel) DO UPDATE SET
    version = notifications.version + 1, payload = excluded.payload

-- poll_notifications --
-- JSON channels
SELECT channel, version, payload FROM notifications
WHERE channel IN (SELECT value FROM json_each(?))

-- find_run_by_idempotency_key --
-- key
SELECT {flow_run_columns} FROM flow_runs WHERE idempotency_key = ?

-- deployment_columns --
-- Column order read by rows.deployment_from_row.
name, id, flow_name, entrypoint, work_queue, priority, concurrency_limit,
collision_strategy, paused, catchup, created, updated, scheduled_until, description,
tags, parameters, schedules, timeout_seconds, retries, parameter_schema, deadlines

-- save_deployment --
-- the 21 columns of deployment_columns. A new version keeps the id, creation
-- time, pause switch and scheduler watermark of the one it replaces.
INSERT INTO deployments ({deployment_columns})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
SELECT {deployment_columns} FROM deployments WHERE name = ?

-- list_deployments --
SELECT {deployment_columns} FROM deployments ORDER BY name

-- delete_deployment --
-- name
DELETE FROM deployments WHERE name = ?

-- set_deployment_paused --
-- paused, now, name
UPDATE deployments SET paused = ?, updated = ? WHERE name = ?

-- advance_deployment_schedule --
-- until, name, until: the watermark only moves forward
UPDATE deployments SET scheduled_until = ?
WHERE name = ? AND (scheduled_until IS NULL OR scheduled_until < ?)

-- start_claimed_flow_run --
-- the parameters of start_flow_run, then the claim's owner token
UPDATE flow_runs SET
    state = 'running',
    owner_token = ?, owner_host = ?, owner_pid = ?, owner_pid_started = ?,
    start_time = coalesce(start_time, ?),
    heartbeat_at = ?,
    end_time = NULL, state_message = NULL, error = NULL, pause = NULL,
    cancel_requested = 0,
    attempts = attempts + 1,
    -- a resume of a failed, crashed or cancelled run gets its flow retries again;
    -- a takeover or the next retry (pending, scheduled) keeps counting
    retries_used = CASE WHEN state IN ('failed', 'crashed', 'cancelled', 'completed')
        THEN 0 ELSE retries_used END
WHERE id = ? AND state IN (SELECT value FROM json_each(?)) AND owner_token = ?

-- next_due_time --
-- JSON queues
SELECT min(scheduled_time) FROM flow_runs
WHERE state = 'scheduled' AND work_queue IN (SELECT value FROM json_each(?))

-- worker_columns --
-- Column order read by worker_from_row.
id, name, host, pid, concurrency, running, started, heartbeat_at, stopped_at, queues

-- save_worker --
-- the 10 columns of worker_columns
INSERT INTO workers ({worker_columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    running = excluded.running, heartbeat_at = excluded.heartbeat_at,
    stopped_at = excluded.stopped_at, concurrency = excluded.concurrency,
    queues = excluded.queues

-- list_workers --
-- seen since
SELECT {worker_columns} FROM workers WHERE heartbeat_at >= ? ORDER BY heartbeat_at DESC

-- delete_workers --
-- seen before
DELETE FROM workers WHERE heartbeat_at < ?

-- count_rows --
-- {table} is one of the store's own table names, filled in by the store
SELECT count(*) FROM {table}

-- prune_roots --
-- JSON final states, cutoff (twice), limit: top-level runs that ended before the
-- cutoff; "created < cutoff" lets the (state, created) index find them
SELECT id FROM flow_runs
WHERE parent_run_id IS NULL AND state IN (SELECT value FROM json_each(?))
    AND created < ? AND coalesce(end_time, created) < ?
ORDER BY created LIMIT ?

-- prune_family --
-- JSON ids of the roots: fills prune_ids with them and every run below them
INSERT OR IGNORE INTO prune_ids (id)
WITH RECURSIVE family (id) AS (
    SELECT value FROM json_each(?)
    UNION
    SELECT f.id FROM flow_runs AS f JOIN family ON f.parent_run_id = family.id
)
SELECT id FROM family

-- prune_count --
SELECT
    (SELECT count(*) FROM prune_ids),
    (SELECT count(*) FROM task_runs WHERE flow_run_id IN (SELECT id FROM prune_ids)),
    (SELECT count(*) FROM logs WHERE flow_run_id IN (SELECT id FROM prune_ids))

-- prune_delete --
-- one script: everything of the runs in prune_ids, then the list itself
DELETE FROM task_cache WHERE task_run_id IN (
    SELECT id FROM task_runs WHERE flow_run_id IN (SELECT id FROM prune_ids)
);
DELETE FROM task_runs WHERE flow_run_id IN (SELECT id FROM prune_ids);
DELETE FROM task_run_journal WHERE flow_run_id IN (SELECT id FROM prune_ids);
DELETE FROM logs WHERE flow_run_id IN (SELECT id FROM prune_ids);
DELETE FROM artifacts WHERE flow_run_id IN (SELECT id FROM prune_ids);
DELETE FROM run_inputs WHERE flow_run_id IN (SELECT id FROM prune_ids);
DELETE FROM llm_calls WHERE flow_run_id IN (SELECT id FROM prune_ids);
DELETE FROM llm_streams WHERE flow_run_id IN (SELECT id FROM prune_ids);
DELETE FROM flow_run_tags WHERE run_id IN (SELECT id FROM prune_ids);
DELETE FROM flow_runs WHERE id IN (SELECT id FROM prune_ids);
DELETE FROM prune_ids

-- set_limit --
-- name, slots, per_seconds, now
INSERT INTO limits (name, slots, per_seconds, created) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, per_seconds = excluded.per_seconds
RETURNING name, slots, per_seconds

-- list_limits --
-- now; {names} is "" or "WHERE l.name IN (SELECT value FROM json_each(?))"
SELECT l.name, l.slots, l.per_seconds,
    (SELECT count(*) FROM limit_slots AS s WHERE s.name = l.name AND s.expires_at > ?)
FROM limits AS l {names}
ORDER BY l.name

-- delete_limit --
-- name
DELETE FROM limits WHERE name = ?

-- delete_limit_slots --
-- name
DELETE FROM limit_slots WHERE name = ?

-- get_limit --
-- name
SELECT slots, per_seconds FROM limits WHERE name = ?

-- drop_expired_slots --
-- name, now
DELETE FROM limit_slots WHERE name = ? AND expires_at <= ?

-- holds_slot --
-- name, holder
SELECT 1 FROM limit_slots WHERE name = ? AND holder = ?

-- count_slots --
-- name
SELECT count(*) FROM limit_slots WHERE name = ?

-- insert_slot --
-- name, holder, now, expires_at
INSERT INTO limit_slots (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)

-- renew_slots --
-- expires_at, JSON holders
UPDATE limit_slots SET expires_at = ?
WHERE holder IN (SELECT value FROM json_each(?))
    AND name IN (SELECT name FROM limits WHERE per_seconds IS NULL)

-- release_slots --
-- holder
DELETE FROM limit_slots
WHERE holder = ? AND name IN (SELECT name FROM limits WHERE per_seconds IS NULL)

-- insert_variable --
-- name, value, tags, now, now: nothing when the name is taken
INSERT INTO variables (name, value, tags, created, updated) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO NOTHING
RETURNING name

-- upsert_variable --
-- name, value, tags, now, now
INSERT INTO variables (name, value, tags, created, updated) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE
    SET value = excluded.value, tags = excluded.tags, updated = excluded.updated
RETURNING name

-- get_variable --
-- name
SELECT name, value, tags, created, updated FROM variables WHERE name = ?

-- list_variables --
SELECT name, value, tags, created, updated FROM variables ORDER BY name

-- delete_variable --
-- name
DELETE FROM variables WHERE name = ?

-- insert_artifact --
-- id, key, type, data, description, flow_run_id, task_run_id, now: an id seen
-- before (the same call replayed on resume) is kept as it is
INSERT INTO artifacts (id, key, type, data, description, flow_run_id, task_run_id, created)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING

-- update_artifact --
-- data, description (NULL keeps it), id, type
UPDATE artifacts SET data = ?, description = COALESCE(?, description)
WHERE id = ? AND type = ?

-- list_artifacts --
-- limit: newest first
SELECT id, key, type, data, description, flow_run_id, task_run_id, created FROM artifacts
ORDER BY created DESC, id DESC LIMIT ?

-- list_artifacts_by_key --
-- key, limit: newest first
SELECT id, key, type, data, description, flow_run_id, task_run_id, created FROM artifacts
WHERE key = ? ORDER BY created DESC, id DESC LIMIT ?

-- list_artifacts_by_run --
-- flow_run_id, limit: oldest first (the order the run made them)
SELECT id, key, type, data, description, flow_run_id, task_run_id, created FROM artifacts
WHERE flow_run_id = ? ORDER BY created, id LIMIT ?

-- insert_transaction_record --
-- key, flow_run_id, committed_at, payload: a key committed before is kept as it is
INSERT INTO transaction_records (key, flow_run_id, committed_at, payload) VALUES (?, ?, ?, ?)
ON CONFLICT (key) DO NOTHING

-- get_transaction_record --
-- key
SELECT key, flow_run_id, committed_at, payload FROM transaction_records WHERE key = ?

-- delete_transaction_record --
-- key
DELETE FROM transaction_records WHERE key = ?

-- event_columns --
seq, id, event, occurred, received, resource, related, payload, follows

-- insert_event --
-- id, event, occurred, received, resource_id, resource, related, payload, follows:
-- an id stored before is kept as it is (no row returned)
INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload,
                    follows)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
RETURNING seq

-- get_event --
-- id
SELECT {event_columns} FROM events WHERE id = ?

-- read_events --
-- after seq, limit: store order (one writer at a time: seq order is commit order)
SELECT {event_columns} FROM events WHERE seq > ? ORDER BY seq LIMIT ?

-- last_event_seq --
SELECT coalesce(max(seq), 0) FROM events

-- list_events --
-- {where} is built from the filters; then limit. Newest first.
SELECT {event_columns} FROM events {where} ORDER BY seq DESC LIMIT ?

-- prune_event_resources --
-- received_before, batch size: the resource rows of the events prune_events deletes
DELETE FROM event_resources WHERE seq IN (
    SELECT seq FROM events WHERE received < ? ORDER BY seq LIMIT ?
)

-- prune_events --
-- received_before, batch size
DELETE FROM events WHERE seq IN (
    SELECT seq FROM events WHERE received < ? ORDER BY seq LIMIT ?
)

-- upsert_notification_channel --
-- name, type, config, created, updated: replaces the type and config, keeps created
INSERT INTO notification_channels (name, type, config, created, updated) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET type = excluded.type, config = excluded.config,
                                 updated = excluded.updated
RETURNING name

-- insert_notification_channel --
-- name, type, config, created, updated: a name taken before is kept as it is (no row returned)
INSERT INTO notification_channels (name, type, config, created, updated) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO NOTHING
RETURNING name

-- get_notification_channel --
-- name
SELECT name, type, config, created, updated FROM notification_channels WHERE name = ?

-- list_notification_channels --
SELECT name, type, config, created, updated FROM notification_channels ORDER BY name

-- delete_notification_channel --
-- name
DELETE FROM notification_channels WHERE name = ?

-- delivery_columns --
id, channel, idempotency_key, subject, body, payload, state, attempts, next_attempt_at,
last_error, created, delivered_at, group_key

-- insert_delivery --
-- channel, idempotency_key, subject, body, payload, next_attempt_at, created, group_key:
-- a key enqueued before is kept as it is (no row returned)
INSERT INTO notification_deliveries (channel, idempotency_key, subject, body, payload, state,
                                     next_attempt_at, created, group_key)
VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id

-- delivery_id_by_key --
-- idempotency_key
SELECT id FROM notification_deliveries WHERE idempotency_key = ?

-- get_delivery --
-- id
SELECT {delivery_columns} FROM notification_deliveries WHERE id = ?

-- claim_due_deliveries --
-- owner, lease expiry, now, now, limit: the oldest open delivery of each channel, when it
-- is due and not held by a live lease (one in flight per channel, in id order)
UPDATE notification_deliveries
SET state = 'sending', lease_owner = ?, lease_expires = ?, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM notification_deliveries
    WHERE id IN (
        SELECT min(id) FROM notification_deliveries
        WHERE state IN ('pending', 'sending') GROUP BY channel
    )
    AND next_attempt_at <= ? AND (state = 'pending' OR lease_expires <= ?)
    ORDER BY next_attempt_at, id LIMIT ?
)
RETURNING {delivery_columns}

-- mark_delivery_delivered --
-- delivered_at, id, owner: only by the sender holding it
UPDATE notification_deliveries
SET state = 'delivered', delivered_at = ?, lease_owner = NULL, lease_expires = NULL
WHERE id = ? AND lease_owner = ? AND state = 'sending'

-- mark_delivery_retry --
-- next_attempt_at, last_error, id, owner: back to pending until next_attempt_at
UPDATE notification_deliveries
SET state = 'pending', next_attempt_at = ?, last_error = ?, lease_owner = NULL,
    lease_expires = NULL
WHERE id = ? AND lease_owner = ? AND state = 'sending'

-- mark_delivery_dead --
-- last_error, id, owner: given up (the dead letter keeps its last error)
UPDATE notification_deliveries
SET state = 'dead', last_error = ?, lease_owner = NULL, lease_expires = NULL
WHERE id = ? AND lease_owner = ? AND state = 'sending'

-- list_deliveries --
-- {where} is built from the filters; then limit. Newest first.
SELECT {delivery_columns} FROM notification_deliveries {where} ORDER BY id DESC LIMIT ?

-- ---------------------------------------------------------------------------
-- Automations (base_automations.AutomationOps)

-- upsert_automation --
-- id, name, enabled, spec, created, updated: a replacement keeps id and created
INSERT INTO automations (id, name, enabled, spec, created, updated)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    enabled = excluded.enabled, spec = excluded.spec, updated = excluded.updated
RETURNING id, name, enabled, spec, created, updated

-- get_automation --
SELECT id, name, enabled, spec, created, updated FROM automations WHERE name = ?

-- list_automations --
SELECT id, name, enabled, spec, created, updated FROM automations ORDER BY name

-- automations_version --
-- changes with every create, update, pause, resume (each sets `updated`) and delete
SELECT count(*) || ':' || coalesce(max(updated), 0) FROM automations

-- set_automation_enabled --
-- enabled, updated, name
UPDATE automations SET enabled = ?, updated = ? WHERE name = ?

-- delete_automation_actions --
DELETE FROM automation_actions WHERE automation_id = ?

-- delete_automation_firings --
DELETE FROM automation_firings WHERE automation_id = ?

-- delete_automation_buckets --
-- id, id: its buckets and those of its parts (id#n)
DELETE FROM automation_buckets WHERE automation_id = ? OR automation_id LIKE ? || '#%'

-- delete_automation --
DELETE FROM automations WHERE id = ?

-- get_evaluator_cursor --
SELECT cursor FROM evaluator_cursor WHERE name = ?

-- insert_evaluator_cursor --
-- name, cursor, updated: only when the evaluator never committed before
INSERT INTO evaluator_cursor (name, cursor, updated) VALUES (?, ?, ?)
ON CONFLICT (name) DO NOTHING

-- update_evaluator_cursor --
-- cursor, updated, name, expected cursor: compare-and-set
UPDATE evaluator_cursor SET cursor = ?, updated = ? WHERE name = ? AND cursor = ?

-- get_bucket --
SELECT automation_id, bucket_key, opened_at, count, event_ids, expires_at
FROM automation_buckets WHERE automation_id = ? AND bucket_key = ?

-- list_buckets --
SELECT automation_id, bucket_key, opened_at, count, event_ids, expires_at
FROM automation_buckets WHERE automation_id = ? ORDER BY opened_at LIMIT ?

-- expired_buckets --
-- now, limit
SELECT automation_id, bucket_key, opened_at, count, event_ids, expires_at
FROM automation_buckets WHERE expires_at IS NOT NULL AND expires_at <= ?
ORDER BY expires_at LIMIT ?

-- upsert_bucket --
INSERT INTO automation_buckets (automation_id, bucket_key, opened_at, count, event_ids, expires_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (automation_id, bucket_key) DO UPDATE SET
    opened_at = excluded.opened_at, count = excluded.count,
    event_ids = excluded.event_ids, expires_at = excluded.expires_at

-- delete_bucket --
DELETE FROM automation_buckets WHERE automation_id = ? AND bucket_key = ?

-- insert_firing --
INSERT INTO automation_firings (id, automation_id, fired_at, bucket_key, event_ids, reason)
VALUES (?, ?, ?, ?, ?, ?)

-- insert_action --
-- firing_id, action_index, idempotency_key, automation_id, spec, next_attempt_at
INSERT INTO automation_actions (firing_id, action_index, idempotency_key, automation_id,
                                spec, state, attempts, next_attempt_at, result)
VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, NULL)

-- list_firings --
-- automation_id, limit: newest first
SELECT id, automation_id, fired_at, bucket_key, event_ids, reason
FROM automation_firings WHERE automation_id = ? ORDER BY fired_at DESC, id DESC LIMIT ?

-- count_firings --
SELECT count(*) FROM automation_firings WHERE automation_id = ?

-- firing_actions --
SELECT firing_id, action_index, spec, state, attempts, next_attempt_at, result, automation_id
FROM automation_actions WHERE firing_id = ? ORDER BY action_index

-- due_actions --
-- now, limit
SELECT firing_id, action_index, spec, state, attempts, next_attempt_at, result, automation_id
FROM automation_actions WHERE state = 'pending' AND next_attempt_at <= ?
ORDER BY next_attempt_at, firing_id, action_index LIMIT ?

-- finish_action --
-- state, attempts, result, next_attempt_at, firing_id, action_index
UPDATE automation_actions SET state = ?, attempts = ?, result = ?, next_attempt_at = ?
WHERE firing_id = ? AND action_index = ?

-- insert_webhook --
-- slug, description, template, auth, secret_env, secret, enabled, now, now: nothing
-- when the slug is taken
INSERT INTO webhooks (slug, description, template, auth, secret_env, secret, enabled,
                      created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (slug) DO NOTHING
RETURNING slug

-- upsert_webhook --
-- slug, description, template, auth, secret_env, secret, enabled, now, now: an
-- overwritten webhook keeps its created time
INSERT INTO webhooks (slug, description, template, auth, secret_env, secret, enabled,
                      created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (slug) DO UPDATE
    SET description = excluded.description, template = excluded.template,
        auth = excluded.auth, secret_env = excluded.secret_env, secret = excluded.secret,
        enabled = excluded.enabled, updated = excluded.updated
RETURNING slug

-- get_webhook --
-- slug
SELECT slug, description, template, auth, secret_env, secret, enabled, created, updated
FROM webhooks WHERE slug = ?

-- list_webhooks --
SELECT slug, description, template, auth, secret_env, secret, enabled, created, updated
FROM webhooks ORDER BY slug

-- set_webhook_enabled --
-- enabled, now, slug
UPDATE webhooks SET enabled = ?, updated = ? WHERE slug = ?

-- delete_webhook --
-- slug
DELETE FROM webhooks WHERE slug = ?

-- list_late_runs --
-- due_before, due_after, limit: scheduled runs past due, earliest first (the partial
-- index flow_runs_scheduled_due)
SELECT {flow_run_columns} FROM flow_runs
WHERE state = 'scheduled' AND scheduled_time <= ? AND scheduled_time >= ?
ORDER BY scheduled_time LIMIT ?

-- add_run_deadline --
-- run_id, idx, reference, within_seconds, action, due_at
INSERT INTO flow_run_deadlines (run_id, idx, reference, within_seconds, action, due_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, idx) DO NOTHING

-- list_run_deadlines --
-- run_id
SELECT run_id, idx, reference, within_seconds, action, due_at, fired_at
FROM flow_run_deadlines WHERE run_id = ? ORDER BY idx

-- due_deadlines --
-- now, limit: armed, unfired, due, of runs that exist and are not final
SELECT d.run_id, d.idx, d.reference, d.within_seconds, d.action, d.due_at, d.fired_at
FROM flow_run_deadlines AS d JOIN flow_runs AS fr ON fr.id = d.run_id
WHERE d.fired_at IS NULL AND d.due_at IS NOT NULL AND d.due_at <= ?
  AND fr.state NOT IN ('completed', 'failed', 'crashed', 'cancelled')
ORDER BY d.due_at LIMIT ?

-- fire_deadline --
-- fired_at, run_id, idx: compare-and-set; a row (the action) only when this call fired it
UPDATE flow_run_deadlines SET fired_at = ?
WHERE run_id = ? AND idx = ? AND fired_at IS NULL AND due_at IS NOT NULL
  AND EXISTS (SELECT 1 FROM flow_runs AS fr WHERE fr.id = flow_run_deadlines.run_id
              AND fr.state NOT IN ('completed', 'failed', 'crashed', 'cancelled'))
RETURNING action

-- list_finished_runs --
-- index start (received), since, limit: runs in a final state that ended at or after
-- `since`, found through their final-state events (events (event, seq)), latest first
SELECT {flow_run_columns} FROM flow_runs
WHERE id IN (
    SELECT substr(resource_id, 17) FROM events
    WHERE event IN ('legato.flow-run.Completed', 'legato.flow-run.Failed',
                    'legato.flow-run.Crashed', 'legato.flow-run.Cancelled')
      AND seq >= coalesce(
          (SELECT seq FROM events WHERE received >= ? ORDER BY received LIMIT 1),
          9223372036854775807))
  -- (+state: look runs up by id, never walk the state index over every final run)
  AND +state IN ('completed', 'failed', 'crashed', 'cancelled') AND end_time >= ?
ORDER BY end_time DESC LIMIT ?

-- list_started_runs --
-- index start (received), since, limit: scheduled runs that started at or after `since`,
-- found through their Running events (events (event, seq)), latest first
SELECT {flow_run_columns} FROM flow_runs
WHERE id IN (
    SELECT substr(resource_id, 17) FROM events
    WHERE event = 'legato.flow-run.Running'
      AND seq >= coalesce(
          (SELECT seq FROM events WHERE received >= ? ORDER BY received LIMIT 1),
          9223372036854775807))
  AND scheduled_time IS NOT NULL AND start_time >= ?
ORDER BY start_time DESC LIMIT ?

-- put_alert_state --
-- alert, key, data, expires_at, updated
INSERT INTO alert_states (alert, key, data, expires_at, updated) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (alert, key) DO UPDATE
    SET data = excluded.data, expires_at = excluded.expires_at, updated = excluded.updated

-- get_alert_state --
-- alert, key
SELECT alert, key, data, expires_at, updated FROM alert_states WHERE alert = ? AND key = ?

-- list_alert_states --
-- alert
SELECT alert, key, data, expires_at, updated FROM alert_states WHERE alert = ? ORDER BY key

-- due_alert_states --
-- now, limit (index alert_states_due)
SELECT alert, key, data, expires_at, updated FROM alert_states
WHERE expires_at IS NOT NULL AND expires_at <= ?
ORDER BY expires_at, alert, key LIMIT ?

-- delete_alert_state --
-- alert, key
DELETE FROM alert_states WHERE alert = ? AND key = ?

-- delete_alert_states --
-- alert
DELETE FROM alert_states WHERE alert = ?

-- request_pause --
-- id: flags a running run to pause at its next task boundary (legato suspend)
UPDATE flow_runs SET pause_requested = 1 WHERE id = ? AND state = 'running'

-- record_task_run_event --
-- right after a failed or crashed task run was written to the journal, in the same
-- transaction: its event, built from that journal row (last_insert_rowid())
INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
SELECT lower(hex(randomblob(16))),
       'legato.task-run.' || upper(substr(j.state, 1, 1)) || substr(j.state, 2),
       (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
       'legato.task-run.' || j.id,
       json_object('legato.resource.id', 'legato.task-run.' || j.id,
                   'legato.resource.name', j.name,
                   'legato.state-name', upper(substr(j.state, 1, 1)) || substr(j.state, 2)),
       (SELECT json_group_array(json(r.label)) FROM (
           SELECT json_object('legato.resource.id', 'legato.flow-run.' || j.flow_run_id,
                              'legato.resource.role', 'flow-run') AS label
           UNION ALL
           SELECT json_object('legato.resource.id', 'legato.task.' || j.task_name,
                              'legato.resource.role', 'task',
                              'legato.resource.name', j.task_name)
           UNION ALL
           SELECT json_object('legato.resource.id', 'legato.tag.' || t.value,
                              'legato.resource.role', 'tag')
           FROM json_each(coalesce(j.tags, '[]')) AS t
       ) AS r),
       json_object('to', j.state, 'attempt', j.attempts,
                   'error_type', json_extract(j.error, '$.type'),
                   'error_message', json_extract(j.error, '$.message'))
FROM task_run_journal AS j WHERE j.seq = last_insert_rowid()

-- metric_flow_run_counts --
-- the aggregate run counts folded from the events index (one row per flow,
-- deployment, queue and state: never a scan of the runs)
SELECT flow_name, deployment, work_queue, state, entered, current FROM flow_run_counts

-- metric_flow_run_histograms --
-- the duration, lateness and task duration histogram buckets (folded; lateness by a trigger)
SELECT metric, a, b, le, n, total FROM flow_run_histograms

-- metric_queue_oldest --
-- the oldest scheduled time of the runs waiting in each queue (the partial index
-- of waiting runs, which covers it: never the rows themselves)
SELECT work_queue, min(scheduled_time) FROM flow_runs INDEXED BY flow_runs_queued
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
INSERT INTO task_replay_counts (flow_name, n)
SELECT flow_name, ? FROM flow_runs WHERE id = ?
ON CONFLICT DO UPDATE SET n = n + excluded.n

-- event_count_mark --
-- the seq of the last event counted into event_counts
SELECT seq FROM event_count_mark WHERE id = 1

-- count_new_events --
-- after seq, limit: the events after the mark (a range of the rowid), at most limit of
-- them, per name, with the newest seq of the batch
WITH batch AS (SELECT seq, event FROM events WHERE seq > ? ORDER BY seq LIMIT ?)
SELECT event, count(*), (SELECT max(seq) FROM batch) FROM batch GROUP BY event

-- add_event_count --
-- event, n
INSERT INTO event_counts (event, n) VALUES (?, ?)
ON CONFLICT DO UPDATE SET n = n + excluded.n

-- set_event_count_mark --
-- seq
INSERT INTO event_count_mark (id, seq) VALUES (1, ?)
ON CONFLICT DO UPDATE SET seq = excluded.seq

-- metric_event_counts --
-- the events counted per name
SELECT event, n FROM event_counts

-- flow_run_metric_mark --
-- the seq of the last event folded into the flow run metric tables
SELECT seq FROM flow_run_metric_mark WHERE id = 1

-- flow_run_metric_batch_end --
-- after seq, limit: the newest seq of the next batch of events to fold (NULL if none)
SELECT max(seq) FROM (SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?)

-- flow_run_metric_events --
-- after seq, through seq: the flow run state events in between (a range of the rowid),
-- with what the fold reads of their run: its flow, deployment and queue, or NULL and
-- the event's related resources once it was deleted; its duration
SELECT substr(e.resource_id, 17), json_extract(e.payload, '$.from'),
       json_extract(e.payload, '$.to'), f.flow_name, coalesce(f.deployment, ''),
       coalesce(f.work_queue, ''), CASE WHEN f.id IS NULL THEN e.related END,
       f.end_time - f.start_time
FROM events AS e LEFT JOIN flow_runs AS f ON f.id = substr(e.resource_id, 17)
WHERE e.seq > ? AND e.seq <= ? AND e.resource_id LIKE 'legato.flow-run.%'
  AND e.event LIKE 'legato.flow-run.%'
  AND json_extract(e.payload, '$.to') = lower(substr(e.event, 17))
ORDER BY e.seq

-- flow_run_metric_tasks --
-- ids (a JSON list of flow run ids): their task run records in a final state that
-- ended after their run's mark (the newest journal entry of a call key replacing its
-- folded record): run id, task name, state, cached, duration, end
WITH runs AS (SELECT value AS id FROM json_each(?))
SELECT t.flow_run_id, t.task_name, t.state, t.cached, t.end_time - t.start_time, t.end_time
FROM (SELECT r.flow_run_id, r.task_name, r.state, r.cached, r.start_time, r.end_time
      FROM runs JOIN task_runs AS r ON r.flow_run_id = runs.id
      WHERE NOT EXISTS (SELECT 1 FROM task_run_journal AS j
                        WHERE j.flow_run_id = r.flow_run_id AND j.call_key = r.call_key)
      UNION ALL
      SELECT flow_run_id, task_name, state, cached, start_time, end_time
      FROM (SELECT j.flow_run_id, j.task_name, j.state, j.cached, j.start_time, j.end_time,
                   max(j.seq)
            FROM task_run_journal AS j WHERE j.flow_run_id IN (SELECT id FROM runs)
            GROUP BY j.flow_run_id, j.call_key)) AS t
LEFT JOIN task_run_marks AS m ON m.flow_run_id = t.flow_run_id
WHERE t.state IN ('completed', 'failed', 'crashed', 'cancelled')
  AND t.end_time > coalesce(m.counted_until, -1e300)

-- set_task_run_mark --
-- flow_run_id, counted_until
INSERT INTO task_run_marks (flow_run_id, counted_until) VALUES (?, ?)
ON CONFLICT DO UPDATE SET counted_until = max(counted_until, excluded.counted_until)

-- add_flow_run_counts --
-- flow, deployment, queue, state, entered, current: deltas
INSERT INTO flow_run_counts (flow_name, deployment, work_queue, state, entered, current)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET entered = entered + excluded.entered,
                          current = current + excluded.current

-- add_flow_run_histogram --
-- metric, a, b, le, n, total: deltas
INSERT INTO flow_run_histograms (metric, a, b, le, n, total) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET n = n + excluded.n, total = total + excluded.total

-- add_task_run_counts --
-- flow, task, state, n, cached: deltas
INSERT INTO task_run_counts (flow_name, task_name, state, n, cached) VALUES (?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET n = n + excluded.n, cached = cached + excluded.cached

-- set_flow_run_metric_mark --
-- seq
INSERT INTO flow_run_metric_mark (id, seq) VALUES (1, ?)
ON CONFLICT DO UPDATE SET seq = excluded.seq

-- AI: model calls and prompts

-- llm_call_columns --
-- Column order of legato.store.base_llm.llm_call_params / llm_call_from_row.
id, flow_run_id, call_key, try_number, provider, model, outcome, started,
latency_seconds, input_tokens, output_tokens, cached_tokens, reasoning_tokens,
cost_usd, finish_reason, params, request, response, error, prompt_name,
prompt_version, copied_from

-- insert_llm_call --
-- the 22 llm_call_columns, then flow_run_id and owner_token for the fence: written
-- only if the token still owns the run; a try already recorded is kept (first write
-- wins). 0 rows changed = fenced out or recorded already (llm_run_owned tells which).
INSERT INTO llm_calls ({llm_call_columns})
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM flow_runs WHERE id = ? AND owner_token = ?)
ON CONFLICT (flow_run_id, call_key, try_number) DO NOTHING

-- llm_run_owned --
-- flow_run_id, owner_token
SELECT 1 FROM flow_runs WHERE id = ? AND owner_token = ?

-- list_llm_calls --
-- flow_run_id
SELECT {llm_call_columns} FROM llm_calls WHERE flow_run_id = ?
ORDER BY started, call_key, try_number

-- list_llm_call_tries --
-- flow_run_id, call_key
SELECT {llm_call_columns} FROM llm_calls WHERE flow_run_id = ? AND call_key = ?
ORDER BY started, call_key, try_number

-- llm_usage_select --
-- group ('flow_run', 'flow', 'deployment' or 'model') first: the group, tries, the
-- four token sums and the cost of the tries of llm_calls AS l joined to flow_runs AS f
SELECT CASE ? WHEN 'flow_run' THEN l.flow_run_id
              WHEN 'flow' THEN coalesce(f.flow_name, '')
              WHEN 'deployment' THEN coalesce(f.deployment, '')
              ELSE l.model END,
       count(*), sum(l.input_tokens), sum(l.output_tokens), sum(l.cached_tokens),
       sum(l.reasoning_tokens), coalesce(sum(l.cost_usd), 0)

-- llm_usage_totals --
-- group, since (epoch, or NULL for all): over every run (the started index)
{llm_usage_select}
FROM llm_calls AS l LEFT JOIN flow_runs AS f ON f.id = l.flow_run_id
WHERE l.started >= coalesce(?, -1e300)
GROUP BY 1 ORDER BY 7 DESC, 1

-- llm_usage_totals_of_runs --
-- group, run ids (a JSON list), since (epoch, or NULL): a seek per run
{llm_usage_select}
FROM (SELECT DISTINCT value AS id FROM json_each(?)) AS r
JOIN llm_calls AS l ON l.flow_run_id = r.id
LEFT JOIN flow_runs AS f ON f.id = l.flow_run_id
WHERE l.started >= coalesce(?, -1e300)
GROUP BY 1 ORDER BY 7 DESC, 1

-- llm_usage_counters --
SELECT flow_name, deployment, provider, model, calls, input_tokens, output_tokens,
       cached_tokens, reasoning_tokens, cost_usd
FROM llm_usage_counters ORDER BY flow_name, deployment, provider, model

-- insert_prompt --
-- name, version, template, created: a version stored already is kept
INSERT INTO prompts (name, version, template, created) VALUES (?, ?, ?, ?)
ON CONFLICT (name, version) DO NOTHING

-- get_prompt_version --
-- name, version
SELECT name, version, template, created FROM prompts WHERE name = ? AND version = ?

-- get_prompt_prefix --
-- name, prefix, prefix, limit: the versions starting with the prefix
SELECT name, version, template, created FROM prompts
WHERE name = ? AND substr(version, 1, length(?)) = ?
ORDER BY version LIMIT ?

-- get_newest_prompt --
-- name
SELECT name, version, template, created FROM prompts WHERE name = ?
ORDER BY created DESC, seq DESC LIMIT 1

-- list_prompt_versions --
-- name: newest first
SELECT name, version, template, created FROM prompts WHERE name = ?
ORDER BY created DESC, seq DESC

-- list_prompts --
-- each name with its number of versions and its newest one
SELECT name, versions, version, created FROM (
    SELECT name, version, created, count(*) OVER (PARTITION BY name) AS versions,
           row_number() OVER (PARTITION BY name ORDER BY created DESC, seq DESC) AS n
    FROM prompts
) WHERE n = 1 ORDER BY name

-- flow_run_exists --
-- id
SELECT 1 FROM flow_runs WHERE id = ?

-- fork_task_runs --
-- pairs (a JSON list of [call key, new task run id]), source run id, new run id: the
-- source's task runs at those keys, copied under new ids into the new run (a parent
-- task run copied too is pointed at its copy, otherwise dropped)
WITH keys AS (
    SELECT json_extract(value, '$[0]') AS call_key, json_extract(value, '$[1]') AS new_id
    FROM json_each(?)
), copied AS (
    SELECT k.new_id, t.*
    FROM keys AS k JOIN task_runs AS t ON t.flow_run_id = ? AND t.call_key = k.call_key
)
INSERT INTO task_runs (
    id, flow_run_id, call_key, task_name, name, state, attempts, cached, rolled_back,
    first_start, start_time, end_time, parent_task_run_id, cache_key, cache_expires_at,
    result_serializer, tags, dependencies, inputs, error, result, attempt_log,
    args_fingerprint, host
)
SELECT c.new_id, ?, c.call_key, c.task_name, c.name, c.state, c.attempts, c.cached,
       c.rolled_back, c.first_start, c.start_time, c.end_time,
       (SELECT p.new_id FROM copied AS p WHERE p.id = c.parent_task_run_id),
       c.cache_key, c.cache_expires_at, c.result_serializer, c.tags, c.dependencies,
       c.inputs, c.error, c.result, c.attempt_log, c.args_fingerprint, c.host
FROM copied AS c ORDER BY c.seq

-- fork_llm_calls --
-- new run id, source run id (copied_from), source run id, call keys (a JSON list): the
-- source's tries at those keys or under them (key + '/'), copied under new ids
INSERT INTO llm_calls ({llm_call_columns})
SELECT lower(hex(randomblob(16))), ?, l.call_key, l.try_number, l.provider, l.model,
       l.outcome, l.started, l.latency_seconds, l.input_tokens, l.output_tokens,
       l.cached_tokens, l.reasoning_tokens, l.cost_usd, l.finish_reason, l.params,
       l.request, l.response, l.error, l.prompt_name, l.prompt_version, ?
FROM llm_calls AS l
WHERE l.flow_run_id = ?
  AND EXISTS (SELECT 1 FROM json_each(?) AS k
              WHERE l.call_key = k.value
                 OR substr(l.call_key, 1, length(k.value) + 1) = k.value || '/')
ORDER BY l.started, l.call_key, l.try_number

-- write_llm_stream --
-- flow_run_id, call_key, text, updated: the call's text so far, replaced in place
INSERT INTO llm_streams (flow_run_id, call_key, text, updated) VALUES (?, ?, ?, ?)
ON CONFLICT (flow_run_id, call_key) DO UPDATE SET text = excluded.text, updated = excluded.updated

-- end_llm_stream --
DELETE FROM llm_streams WHERE flow_run_id = ? AND call_key = ?

-- list_llm_streams --
SELECT call_key, text, updated FROM llm_streams WHERE flow_run_id = ? ORDER BY call_key
