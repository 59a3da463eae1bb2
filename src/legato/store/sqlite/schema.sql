-- The full current schema of the SQLite store.
--
-- A fresh database gets this file in one transaction; an existing one gets the
-- numbered files in migrations/ instead. Both roads must end at the same
-- schema (tests/store/test_sqlite.py checks it), so every change goes into a
-- new migration AND here, with added columns at the end of their table (where
-- ALTER TABLE ADD COLUMN puts them).
--
-- Times are REAL seconds since the epoch (UTC); JSON fields are TEXT. Large
-- values (JSON documents, blobs) sit at the end of each row so that reading
-- the small columns before them never touches overflow pages.

CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
);

CREATE TABLE flow_runs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    owner_token TEXT,
    flow_name TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    start_time REAL,
    end_time REAL,
    heartbeat_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    parent_run_id TEXT,
    parent_call_key TEXT,
    entrypoint TEXT,
    flow_version TEXT,
    owner_host TEXT,
    owner_pid INTEGER,
    owner_pid_started REAL,
    result_serializer TEXT,
    state_message TEXT,
    tags TEXT,
    parameters TEXT NOT NULL,
    error TEXT,
    pause TEXT,
    parameters_blob BLOB,
    result BLOB,
    -- Added by migration 0003 (ALTER TABLE appends): small, but after the
    -- blobs; reading them touches overflow pages only for runs with big results.
    work_queue TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    scheduled_time REAL,
    -- Added by migration 0004.
    deployment TEXT,
    idempotency_key TEXT,
    concurrency_key TEXT,
    concurrency_limit INTEGER,
    -- Added by migration 0008: flow retries taken, counted in the store.
    retries_used INTEGER NOT NULL DEFAULT 0
);

-- Ordering by (created, rowid) lets "newest first" walk an index backwards.
CREATE INDEX flow_runs_created ON flow_runs (created);
CREATE INDEX flow_runs_state ON flow_runs (state, created);
CREATE INDEX flow_runs_flow_name ON flow_runs (flow_name, created);
CREATE INDEX flow_runs_parent ON flow_runs (parent_run_id, parent_call_key, created);
-- The claim order of the runs waiting in each queue; only waiting runs are in it.
CREATE INDEX flow_runs_queued ON flow_runs (work_queue, priority DESC, scheduled_time)
WHERE state = 'scheduled';
-- One run per key (a schedule slot's run): a second insert finds the first.
CREATE UNIQUE INDEX flow_runs_idempotency ON flow_runs (idempotency_key)
WHERE idempotency_key IS NOT NULL;
CREATE INDEX flow_runs_deployment ON flow_runs (deployment, created)
WHERE deployment IS NOT NULL;
-- Counting the active runs of a concurrency key when claiming.
CREATE INDEX flow_runs_concurrency ON flow_runs (concurrency_key, state)
WHERE concurrency_key IS NOT NULL;

-- Added by migration 0006. One row per (run, distinct tag): a tag filter walks
-- the runs that carry the tag, newest first, instead of every run. seq is
-- insertion order, as the rowid of flow_runs is, so it breaks ties between
-- equal creation times the same way. Written with the run, deleted with it.
CREATE TABLE flow_run_tags (
    seq INTEGER PRIMARY KEY,
    tag TEXT NOT NULL,
    created REAL NOT NULL,
    run_id TEXT NOT NULL,
    UNIQUE (run_id, tag)
);
CREATE INDEX flow_run_tags_tag ON flow_run_tags (tag, created);

CREATE TABLE task_runs (
    -- Recording order (a rowid table appends cheaply); kept when a call key is
    -- recorded again, since the upsert updates the row in place.
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    flow_run_id TEXT NOT NULL,
    call_key TEXT NOT NULL,
    task_name TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    rolled_back INTEGER NOT NULL DEFAULT 0,
    -- start_time of the first record at this call key: the listing order.
    first_start REAL,
    start_time REAL,
    end_time REAL,
    parent_task_run_id TEXT,
    cache_key TEXT,
    cache_expires_at REAL,
    result_serializer TEXT,
    tags TEXT,
    dependencies TEXT,
    inputs TEXT,
    error TEXT,
    result BLOB,
    -- Added by migration 0007: the attempts of a task run that took several.
    attempt_log TEXT,
    -- Added by migration 0008: the call's arguments, compared on replay.
    args_fingerprint TEXT,
    -- Added by migration 0021: where a remote task runner ran the body.
    host TEXT
);

CREATE UNIQUE INDEX task_runs_call_key ON task_runs (flow_run_id, call_key);
CREATE UNIQUE INDEX task_runs_id ON task_runs (id);

-- One entry per cache key: the newest completed task run that produced it.
CREATE TABLE task_cache (
    cache_key TEXT PRIMARY KEY,
    task_run_id TEXT NOT NULL,
    expires_at REAL,
    created REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE run_inputs (
    flow_run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    PRIMARY KEY (flow_run_id, key)
) WITHOUT ROWID;

CREATE TABLE logs (
    id INTEGER PRIMARY KEY,
    flow_run_id TEXT NOT NULL,
    task_run_id TEXT,
    timestamp REAL NOT NULL,
    level INTEGER NOT NULL,
    logger TEXT NOT NULL,
    message TEXT NOT NULL
);

CREATE INDEX logs_flow_run ON logs (flow_run_id, id);

-- Task runs are first appended to a journal (one cheap page per commit) and
-- folded into task_runs in batches; readers fold before they read.
CREATE TABLE task_run_journal (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    flow_run_id TEXT NOT NULL,
    call_key TEXT NOT NULL,
    task_name TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    rolled_back INTEGER NOT NULL DEFAULT 0,
    first_start REAL,
    start_time REAL,
    end_time REAL,
    parent_task_run_id TEXT,
    cache_key TEXT,
    cache_expires_at REAL,
    result_serializer TEXT,
    tags TEXT,
    dependencies TEXT,
    inputs TEXT,
    error TEXT,
    result BLOB,
    -- Added by migration 0007: the attempts of a task run that took several.
    attempt_log TEXT,
    -- Added by migration 0008: the call's arguments, compared on replay.
    args_fingerprint TEXT,
    -- Added by migration 0021: where a remote task runner ran the body.
    host TEXT
);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    generation INTEGER NOT NULL,
    acquired_at REAL NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;

-- One counter per channel: notify() bumps it, listeners poll it.
CREATE TABLE notifications (
    channel TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    payload TEXT NOT NULL
) WITHOUT ROWID;

-- Workers, each with its last heartbeat: who is alive, serving which queues.
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    concurrency INTEGER NOT NULL,
    running INTEGER NOT NULL DEFAULT 0,
    started REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    stopped_at REAL,
    queues TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE deployments (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    flow_name TEXT NOT NULL,
    entrypoint TEXT NOT NULL,
    work_queue TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    concurrency_limit INTEGER,
    collision_strategy TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    catchup INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    scheduled_until REAL,
    description TEXT,
    tags TEXT,
    parameters TEXT NOT NULL,
    schedules TEXT NOT NULL,
    timeout_seconds REAL,
    retries INTEGER NOT NULL DEFAULT 0,
    -- Added by migration 0009: the flow's parameters as a JSON Schema, recorded by a
    -- deploy that loaded its code (NULL: deployed through the API without one).
    parameter_schema TEXT
) WITHOUT ROWID;

-- Named global limits (concurrency or rate) and the slots taken from them.
CREATE TABLE limits (
    name TEXT PRIMARY KEY,
    slots INTEGER NOT NULL,
    per_seconds REAL,
    created REAL NOT NULL
) WITHOUT ROWID;

-- A slot expires unless its holder renews it (a crashed holder frees it); a
-- rate limit's slots just expire at the end of their window.
CREATE TABLE limit_slots (
    name TEXT NOT NULL,
    holder TEXT NOT NULL,
    acquired_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (name, holder)
) WITHOUT ROWID;
CREATE INDEX limit_slots_holder ON limit_slots (holder);

-- Named JSON values that flows, tasks and people share (`legato.variables.Variable`).
-- value holds the JSON text (the store never looks inside it), tags a JSON list.
CREATE TABLE variables (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    tags TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;

-- Artifacts: markdown, tables and links that runs publish (`legato.artifacts`).
-- data is JSON text the store never looks inside; flow_run_id and task_run_id
-- are NULL for an artifact created outside any run.
CREATE TABLE artifacts (
    id TEXT PRIMARY KEY,
    key TEXT,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    description TEXT,
    flow_run_id TEXT,
    task_run_id TEXT,
    created REAL NOT NULL
);
CREATE INDEX artifacts_flow_run ON artifacts (flow_run_id, created);
CREATE INDEX artifacts_key ON artifacts (key, created);

-- Keyed transactions that committed (`transaction(key=...)`): one row per key.
-- payload holds the results of the block's tasks and its values, encoded by
-- the engine (the store never looks inside). Kept by `legato db prune`.
CREATE TABLE transaction_records (
    key TEXT PRIMARY KEY,
    flow_run_id TEXT NOT NULL,
    committed_at REAL NOT NULL,
    payload BLOB NOT NULL
) WITHOUT ROWID;

-- Events: what happened, in the order the store recorded it (`legato.events`).
-- seq is that order. SQLite has one writer at a time, so seq order is commit order
-- and a reader that remembers the last seq it read never misses an event.
-- resource is a JSON label object, related a JSON list of them; payload is JSON.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    occurred REAL NOT NULL,
    received REAL NOT NULL,
    resource_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    related TEXT NOT NULL,
    payload TEXT NOT NULL,
    follows TEXT
);
CREATE INDEX events_event ON events (event, seq);
CREATE INDEX events_received ON events (received);

-- Every resource an event names (its own with role '', and each related one), so
-- "events about X" is an index lookup, not a scan.
CREATE TABLE event_resources (
    resource_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (resource_id, seq, role)
) WITHOUT ROWID;
CREATE INDEX event_resources_seq ON event_resources (seq);

CREATE TRIGGER events_index_resources AFTER INSERT ON events
BEGIN
    INSERT OR IGNORE INTO event_resources (resource_id, seq, role)
    SELECT NEW.resource_id, NEW.seq, ''
    UNION ALL
    SELECT json_extract(value, '$."legato.resource.id"'), NEW.seq,
           coalesce(json_extract(value, '$."legato.resource.role"'), '')
    FROM json_each(NEW.related)
    WHERE json_extract(value, '$."legato.resource.id"') IS NOT NULL;
END;

-- The event of a flow run's current state: its name, resource and related
-- resources (flow, deployment, work queue, parent run, tags).
CREATE VIEW flow_run_event_source AS
SELECT
    fr.id AS run_id,
    'legato.flow-run.' || upper(substr(fr.state, 1, 1)) || substr(fr.state, 2) AS event,
    'legato.flow-run.' || fr.id AS resource_id,
    json_object(
        'legato.resource.id', 'legato.flow-run.' || fr.id,
        'legato.resource.name', fr.name,
        'legato.state-name', upper(substr(fr.state, 1, 1)) || substr(fr.state, 2)
    ) AS resource,
    (SELECT json_group_array(json(r.label)) FROM (
        SELECT json_object('legato.resource.id', 'legato.flow.' || fr.flow_name,
                           'legato.resource.role', 'flow',
                           'legato.resource.name', fr.flow_name) AS label
        UNION ALL
        SELECT json_object('legato.resource.id', 'legato.deployment.' || fr.deployment,
                           'legato.resource.role', 'deployment',
                           'legato.resource.name', fr.deployment)
        WHERE fr.deployment IS NOT NULL
        UNION ALL
        SELECT json_object('legato.resource.id', 'legato.work-queue.' || fr.work_queue,
                           'legato.resource.role', 'work-queue',
                           'legato.resource.name', fr.work_queue)
        WHERE fr.work_queue IS NOT NULL
        UNION ALL
        SELECT json_object('legato.resource.id', 'legato.flow-run.' || fr.parent_run_id,
                           'legato.resource.role', 'parent-flow-run')
        WHERE fr.parent_run_id IS NOT NULL
        UNION ALL
        SELECT json_object('legato.resource.id', 'legato.tag.' || t.value,
                           'legato.resource.role', 'tag')
        FROM json_each(coalesce(fr.tags, '[]')) AS t
    ) AS r) AS related,
    fr.state AS state,
    fr.state_message AS message,
    fr.attempts AS attempts,
    json_extract(fr.error, '$.type') AS error_type,
    json_extract(fr.error, '$.message') AS error_message
FROM flow_runs AS fr;

-- A flow run's state change writes its event in the same transaction as the change
-- (these triggers), whichever store operation made it: no state change's event can be
-- lost, and none is written for a change that rolled back.
CREATE TRIGGER flow_run_created_event AFTER INSERT ON flow_runs
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    SELECT lower(hex(randomblob(16))), s.event,
           (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
           s.resource_id, s.resource, s.related,
           json_object('from', NULL, 'to', s.state, 'message', s.message,
                       'attempt', s.attempts, 'error_type', s.error_type,
                       'error_message', s.error_message)
    FROM flow_run_event_source AS s WHERE s.run_id = NEW.id;
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER flow_run_state_event AFTER UPDATE OF state ON flow_runs
WHEN NEW.state IS NOT OLD.state
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    SELECT lower(hex(randomblob(16))), s.event,
           (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
           s.resource_id, s.resource, s.related,
           json_object('from', OLD.state, 'to', s.state, 'message', s.message,
                       'attempt', s.attempts, 'error_type', s.error_type,
                       'error_message', s.error_message)
    FROM flow_run_event_source AS s WHERE s.run_id = NEW.id;
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

-- Task runs: only failures and crashes write events, and the store writes them with
-- the task run (record_task_run_event in queries.sql), not a trigger: a completed
-- task pays nothing for events.

-- Notification channels (secrets kept as environment variable NAMES) and the outbox of
-- deliveries that the sender works through: one in flight per channel, in id order.
CREATE TABLE notification_channels (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    config TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE notification_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created REAL NOT NULL,
    delivered_at REAL,
    group_key TEXT,
    lease_owner TEXT,
    lease_expires REAL
);

CREATE INDEX notification_deliveries_open ON notification_deliveries (channel, id)
WHERE state IN ('pending', 'sending');

CREATE INDEX notification_deliveries_state ON notification_deliveries (state, id);

-- Automations (`legato.automations`): a trigger and actions, stored by name, with the
-- evaluator's state. Buckets, firings and action rows are written in the transaction
-- that moves the evaluator's cursor (commit_evaluation): a firing exists exactly when
-- the cursor passed the events that caused it. Times are epoch seconds.
CREATE TABLE automations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);

CREATE TABLE automation_buckets (
    automation_id TEXT NOT NULL,
    bucket_key TEXT NOT NULL,
    opened_at REAL NOT NULL,
    count INTEGER NOT NULL,
    event_ids TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (automation_id, bucket_key)
) WITHOUT ROWID;
CREATE INDEX automation_buckets_expires ON automation_buckets (expires_at)
WHERE expires_at IS NOT NULL;

CREATE TABLE automation_firings (
    id TEXT PRIMARY KEY,
    automation_id TEXT NOT NULL,
    fired_at REAL NOT NULL,
    bucket_key TEXT NOT NULL,
    event_ids TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX automation_firings_automation ON automation_firings (automation_id, fired_at);

-- One row per action of a firing; idempotency_key = firing_id || ':' || action_index.
CREATE TABLE automation_actions (
    firing_id TEXT NOT NULL,
    action_index INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    automation_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    result TEXT,
    PRIMARY KEY (firing_id, action_index)
);
CREATE INDEX automation_actions_due ON automation_actions (next_attempt_at)
WHERE state = 'pending';

CREATE TABLE evaluator_cursor (
    name TEXT PRIMARY KEY,
    cursor TEXT NOT NULL,
    updated REAL NOT NULL
);

-- Webhooks (`legato webhook`): POST /hooks/{slug} renders `template` into an event.
-- auth: none | secret | hmac; the secret is named by secret_env (an environment
-- variable of the server) or, when given plainly, kept in secret (never shown back).
CREATE TABLE webhooks (
    slug TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    template TEXT NOT NULL,
    auth TEXT NOT NULL CHECK (auth IN ('none', 'secret', 'hmac')),
    secret_env TEXT,
    secret TEXT,
    enabled INTEGER NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;

-- Deadlines of flow runs (`legato.Deadline`), one row per run and deadline, written
-- with the run. due_at is NULL until the reference time is known (a "started"
-- deadline is armed by the trigger below when the run starts) and again once the
-- run ended; fired_at is set, compare-and-set, by the sweep that emits the
-- deadline-missed event in the same transaction.
CREATE TABLE flow_run_deadlines (
    run_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    reference TEXT NOT NULL CHECK (reference IN ('scheduled', 'started')),
    within_seconds REAL NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('alert', 'cancel')),
    due_at REAL,
    fired_at REAL,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;
CREATE INDEX flow_run_deadlines_due ON flow_run_deadlines (due_at)
WHERE fired_at IS NULL AND due_at IS NOT NULL;

CREATE TRIGGER flow_run_deadlines_started AFTER UPDATE OF state ON flow_runs
WHEN NEW.state = 'running' AND NEW.state IS NOT OLD.state
BEGIN
    UPDATE flow_run_deadlines
    SET due_at = coalesce(NEW.start_time, (julianday('now') - 2440587.5) * 86400.0)
                 + within_seconds
    WHERE run_id = NEW.id AND reference = 'started' AND due_at IS NULL AND fired_at IS NULL;
END;

CREATE TRIGGER flow_run_deadlines_ended AFTER UPDATE OF state ON flow_runs
WHEN NEW.state IN ('completed', 'failed', 'crashed', 'cancelled')
     AND NEW.state IS NOT OLD.state
BEGIN
    UPDATE flow_run_deadlines SET due_at = NULL
    WHERE run_id = NEW.id AND fired_at IS NULL AND due_at IS NOT NULL;
END;

CREATE TRIGGER flow_run_deadlines_deleted AFTER DELETE ON flow_runs
BEGIN
    DELETE FROM flow_run_deadlines WHERE run_id = OLD.id;
END;

-- Scheduled runs by due time: the late-run sweep reads those past due.
CREATE INDEX flow_runs_scheduled_due ON flow_runs (scheduled_time) WHERE state = 'scheduled';

-- A deployment's deadlines (JSON list of {within, reference, action}), given to each
-- run it queues.
ALTER TABLE deployments ADD COLUMN deadlines TEXT;

-- Alert rules' states (`legato.alerts`): per alert and key (a group key, or
-- '#rate:<channel>'), a JSON state; expires_at: when the leader looks at it again.
CREATE TABLE alert_states (
    alert TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    expires_at REAL,
    updated REAL NOT NULL,
    PRIMARY KEY (alert, key)
) WITHOUT ROWID;

CREATE INDEX alert_states_due ON alert_states (expires_at) WHERE expires_at IS NOT NULL;

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

-- Events of deployments and workers, written by triggers in the same transaction as
-- the change (as flow runs' are): created, updated, paused, resumed and deleted
-- deployments; started and stopped workers. (A worker that stops without saying so
-- is reported `legato.worker.offline` by the leader's sweep.)
CREATE TRIGGER deployment_created_event AFTER INSERT ON deployments
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))), 'legato.deployment.created',
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.deployment.' || NEW.name,
        json_object('legato.resource.id', 'legato.deployment.' || NEW.name,
                    'legato.resource.name', NEW.name),
        json_array(
            json_object('legato.resource.id', 'legato.flow.' || NEW.flow_name,
                        'legato.resource.role', 'flow', 'legato.resource.name', NEW.flow_name),
            json_object('legato.resource.id', 'legato.work-queue.' || NEW.work_queue,
                        'legato.resource.role', 'work-queue',
                        'legato.resource.name', NEW.work_queue)),
        json_object('entrypoint', NEW.entrypoint, 'paused', json(CASE WHEN NEW.paused
                    THEN 'true' ELSE 'false' END))
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER deployment_updated_event
AFTER UPDATE OF flow_name, entrypoint, work_queue, priority, concurrency_limit,
    collision_strategy, catchup, description, tags, parameters, schedules, timeout_seconds,
    retries ON deployments
WHEN NEW.flow_name IS NOT OLD.flow_name OR NEW.entrypoint IS NOT OLD.entrypoint
    OR NEW.work_queue IS NOT OLD.work_queue OR NEW.priority IS NOT OLD.priority
    OR NEW.concurrency_limit IS NOT OLD.concurrency_limit
    OR NEW.collision_strategy IS NOT OLD.collision_strategy OR NEW.catchup IS NOT OLD.catchup
    OR NEW.description IS NOT OLD.description OR NEW.tags IS NOT OLD.tags
    OR NEW.parameters IS NOT OLD.parameters OR NEW.schedules IS NOT OLD.schedules
    OR NEW.timeout_seconds IS NOT OLD.timeout_seconds OR NEW.retries IS NOT OLD.retries
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))), 'legato.deployment.updated',
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.deployment.' || NEW.name,
        json_object('legato.resource.id', 'legato.deployment.' || NEW.name,
                    'legato.resource.name', NEW.name),
        json_array(
            json_object('legato.resource.id', 'legato.flow.' || NEW.flow_name,
                        'legato.resource.role', 'flow', 'legato.resource.name', NEW.flow_name),
            json_object('legato.resource.id', 'legato.work-queue.' || NEW.work_queue,
                        'legato.resource.role', 'work-queue',
                        'legato.resource.name', NEW.work_queue)),
        json_object('entrypoint', NEW.entrypoint)
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER deployment_paused_event AFTER UPDATE OF paused ON deployments
WHEN NEW.paused IS NOT OLD.paused
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))),
        CASE WHEN NEW.paused THEN 'legato.deployment.paused' ELSE 'legato.deployment.resumed' END,
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.deployment.' || NEW.name,
        json_object('legato.resource.id', 'legato.deployment.' || NEW.name,
                    'legato.resource.name', NEW.name),
        json_array(
            json_object('legato.resource.id', 'legato.flow.' || NEW.flow_name,
                        'legato.resource.role', 'flow', 'legato.resource.name', NEW.flow_name)),
        json_object()
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER deployment_deleted_event AFTER DELETE ON deployments
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))), 'legato.deployment.deleted',
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.deployment.' || OLD.name,
        json_object('legato.resource.id', 'legato.deployment.' || OLD.name,
                    'legato.resource.name', OLD.name),
        json_array(
            json_object('legato.resource.id', 'legato.flow.' || OLD.flow_name,
                        'legato.resource.role', 'flow', 'legato.resource.name', OLD.flow_name)),
        json_object()
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER worker_started_event AFTER INSERT ON workers
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))), 'legato.worker.started',
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.worker.' || NEW.id,
        json_object('legato.resource.id', 'legato.worker.' || NEW.id,
                    'legato.resource.name', NEW.name),
        (SELECT json_group_array(json_object(
                    'legato.resource.id', 'legato.work-queue.' || q.value,
                    'legato.resource.role', 'work-queue', 'legato.resource.name', q.value))
         FROM json_each(NEW.queues) AS q),
        json_object('host', NEW.host, 'pid', NEW.pid, 'concurrency', NEW.concurrency)
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER worker_stopped_event AFTER UPDATE OF stopped_at ON workers
WHEN NEW.stopped_at IS NOT NULL AND OLD.stopped_at IS NULL
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))), 'legato.worker.stopped',
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.worker.' || NEW.id,
        json_object('legato.resource.id', 'legato.worker.' || NEW.id,
                    'legato.resource.name', NEW.name),
        '[]',
        json_object('host', NEW.host, 'pid', NEW.pid)
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

-- Added by migration 0022. Traces (issue 14): the W3C traceparent of a flow run's
-- `flow NAME` span, so that every attempt, in any process, continues the trace.
ALTER TABLE flow_runs ADD COLUMN trace_context TEXT;

-- Added by migration 0023. Metrics (issue 14): aggregate counts of flow runs kept by the run table's own
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

-- Kept by migration 0026 (the scheduled time at the first start is overwritten by a later
-- reschedule, so it cannot be read at scrape time; the body runs once per run with a
-- scheduled time, never for local runs).
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

-- (changed by migration 0026: an upsert, the fold may add the run's states later)
CREATE TRIGGER flow_run_counts_deleted AFTER DELETE ON flow_runs
BEGIN
    INSERT INTO flow_run_counts (flow_name, deployment, work_queue, state, entered, current)
    VALUES (OLD.flow_name, coalesce(OLD.deployment, ''), coalesce(OLD.work_queue, ''),
            OLD.state, 0, -1)
    ON CONFLICT DO UPDATE SET current = current - 1;
END;

-- Task runs are counted at every attempt end of their flow run (migration 0025): the
-- records of that run's task runs (those still in the journal included, the newest
-- entry per call key, as the fold will keep) that reached a final state and ended
-- after the run's mark in task_run_marks; the mark then moves to the newest end. One
-- increment is one task run record reaching a final state; nothing is subtracted and
-- nothing is added to the per-task path. cached: those whose result came from the cache.
CREATE TABLE task_run_counts (
    flow_name TEXT NOT NULL,
    task_name TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (flow_name, task_name, state)
) WITHOUT ROWID;

CREATE TABLE task_run_marks (
    flow_run_id TEXT PRIMARY KEY,
    counted_until REAL NOT NULL
) WITHOUT ROWID;

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

-- Added by migration 0026. The flow run metric tables above (flow_run_counts,
-- flow_run_histograms, task_run_counts, task_run_marks) are folded at scrape time
-- from the events index, not kept by triggers on flow_runs (which cost every state
-- change): flow_run_metric_mark holds the last event seq folded (one row). Only the
-- deletion triggers stay (a deleted run leaves the current counts; its mark goes).
CREATE TABLE flow_run_metric_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);

-- Added by migration 0024. Traces, round 2 (issue 14): the trace and span ids (hex) of
-- the span a log line was written in, when traces were on; NULL otherwise.
ALTER TABLE logs ADD COLUMN trace_id TEXT;
ALTER TABLE logs ADD COLUMN span_id TEXT;

-- Added by migration 0027 (issue 15): model calls, their usage counters, prompts.
CREATE TABLE llm_calls (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    flow_run_id TEXT NOT NULL,
    call_key TEXT NOT NULL,
    try_number INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    outcome TEXT NOT NULL,
    started REAL NOT NULL,
    latency_seconds REAL NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_usd REAL,
    finish_reason TEXT,
    params TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    error TEXT,
    prompt_name TEXT,
    prompt_version TEXT,
    copied_from TEXT
);

CREATE UNIQUE INDEX llm_calls_try ON llm_calls (flow_run_id, call_key, try_number);
CREATE UNIQUE INDEX llm_calls_id ON llm_calls (id);
CREATE INDEX llm_calls_started ON llm_calls (started);

-- Monotonic totals per flow, deployment ('' for none), provider and model for the
-- metrics, kept by the trigger below as tries are written (a fork's copies are not
-- counted again); pruning runs never lowers them.
CREATE TABLE llm_usage_counters (
    flow_name TEXT NOT NULL,
    deployment TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (flow_name, deployment, provider, model)
) WITHOUT ROWID;

CREATE TRIGGER llm_calls_counted AFTER INSERT ON llm_calls
WHEN NEW.copied_from IS NULL
BEGIN
    INSERT INTO llm_usage_counters (
        flow_name, deployment, provider, model, calls, input_tokens, output_tokens,
        cached_tokens, reasoning_tokens, cost_usd
    )
    SELECT f.flow_name, coalesce(f.deployment, ''), NEW.provider, NEW.model, 1,
           NEW.input_tokens, NEW.output_tokens, NEW.cached_tokens, NEW.reasoning_tokens,
           coalesce(NEW.cost_usd, 0)
    FROM flow_runs AS f WHERE f.id = NEW.flow_run_id
    ON CONFLICT DO UPDATE SET
        calls = calls + 1,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cached_tokens = cached_tokens + excluded.cached_tokens,
        reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
        cost_usd = cost_usd + excluded.cost_usd;
END;

-- Prompt versions, stored once per (name, content hash); never pruned. seq orders
-- versions made in the same instant.
CREATE TABLE prompts (
    seq INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    template TEXT NOT NULL,
    created REAL NOT NULL
);

CREATE UNIQUE INDEX prompts_version ON prompts (name, version);
CREATE INDEX prompts_created ON prompts (name, created);

-- Streamed model calls (issue 15): the text so far of a call in flight, one row per
-- call replaced in place (best effort, for the run page's live view), removed when
-- the call ends and with its run when the run is pruned.
CREATE TABLE llm_streams (
    flow_run_id TEXT NOT NULL,
    call_key TEXT NOT NULL,
    text TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (flow_run_id, call_key)
);
