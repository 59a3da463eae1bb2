-- The full current schema of the PostgreSQL store.
--
-- A fresh database gets this file in one transaction; an existing one gets the
-- numbered files in migrations/ instead. Both roads must end at the same
-- schema (tests/store/test_postgres.py compares the catalogs), so every change
-- goes into a new migration AND here, with added columns at the end of their
-- table (where ALTER TABLE ADD COLUMN puts them).
--
-- Types: times are timestamptz (microseconds, like Python's datetime); blobs
-- are bytea. JSON documents whose text must come back as written -- user
-- chosen keys in the user's order (parameters, task inputs, a pause's input
-- schema, which a form follows field by field) and numbers spelled exactly
-- (the parameters' JSON view rebuilds them on resume, and jsonb would turn
-- 1e20 into an int) -- are json; documents legato writes itself, whose key
-- order means nothing, are jsonb. Ids and keys compare byte-wise (COLLATE
-- "C"): cheaper than a linguistic collation, and it makes a prefix of a run
-- id a plain range on the primary key.
--
-- No foreign keys, as in the SQLite store: the fence already checks that a
-- task run's flow run exists, and integrity is kept by the store's own code.

CREATE TABLE schema_migrations (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL
);

CREATE TABLE flow_runs (
    id text COLLATE "C" PRIMARY KEY,
    -- Creation order, the tie-breaker of "newest first" between equal times.
    seq bigint GENERATED ALWAYS AS IDENTITY,
    state text NOT NULL,
    owner_token text COLLATE "C",
    flow_name text NOT NULL,
    name text NOT NULL,
    created timestamptz NOT NULL,
    start_time timestamptz,
    end_time timestamptz,
    heartbeat_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    cancel_requested boolean NOT NULL DEFAULT false,
    parent_run_id text COLLATE "C",
    parent_call_key text COLLATE "C",
    entrypoint text,
    flow_version text,
    owner_host text,
    owner_pid integer,
    owner_pid_started double precision,
    result_serializer text,
    state_message text,
    tags jsonb,
    parameters json NOT NULL,
    error jsonb,
    pause json,
    parameters_blob bytea,
    result bytea,
    -- Added by migration 0002.
    work_queue text COLLATE "C",
    priority integer NOT NULL DEFAULT 0,
    scheduled_time timestamptz,
    -- Added by migration 0003.
    deployment text COLLATE "C",
    idempotency_key text COLLATE "C",
    concurrency_key text COLLATE "C",
    concurrency_limit integer,
    -- Added by migration 0007: flow retries taken, counted in the store.
    retries_used integer NOT NULL DEFAULT 0
) WITH (fillfactor = 90);
-- fillfactor: room on each page for the new row version of a heartbeat (once
-- a second per running run), so that it stays a HOT update touching no index.

-- (created, seq) lets "newest first" walk an index backwards.
CREATE INDEX flow_runs_created ON flow_runs (created, seq);
CREATE INDEX flow_runs_state ON flow_runs (state, created, seq);
CREATE INDEX flow_runs_flow_name ON flow_runs (flow_name, created, seq);
-- Only subflow runs have a parent: a partial index stays small.
CREATE INDEX flow_runs_parent ON flow_runs (parent_run_id, parent_call_key, created, seq)
    WHERE parent_run_id IS NOT NULL;
-- The claim order of the runs waiting in each queue; only waiting runs are in it.
CREATE INDEX flow_runs_queued ON flow_runs (work_queue, priority DESC, scheduled_time)
    WHERE state = 'scheduled';
-- One run per key (a schedule slot's run): a second insert finds the first.
CREATE UNIQUE INDEX flow_runs_idempotency ON flow_runs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX flow_runs_deployment ON flow_runs (deployment, created, seq)
    WHERE deployment IS NOT NULL;
-- Counting the active runs of a concurrency key when claiming.
CREATE INDEX flow_runs_concurrency ON flow_runs (concurrency_key, state)
    WHERE concurrency_key IS NOT NULL;

-- Added by migration 0005. One row per (run, distinct tag): a tag filter walks
-- the runs that carry the tag, newest first, instead of every run. created and
-- seq are copies of the run's (neither ever changes), so the (tag, created, seq)
-- index gives the order of every other listing. Written with the run, deleted
-- with it.
CREATE TABLE flow_run_tags (
    created timestamptz NOT NULL,
    seq bigint NOT NULL,
    run_id text COLLATE "C" NOT NULL,
    tag text COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE INDEX flow_run_tags_tag ON flow_run_tags (tag, created, seq);

CREATE TABLE task_runs (
    flow_run_id text COLLATE "C" NOT NULL,
    call_key text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    -- Recording order; kept when a call key is recorded again (the upsert
    -- updates the row in place).
    seq bigint GENERATED ALWAYS AS IDENTITY,
    task_name text NOT NULL,
    name text NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    cached boolean NOT NULL DEFAULT false,
    rolled_back boolean NOT NULL DEFAULT false,
    -- start_time of the first record at this call key: the listing order.
    first_start timestamptz,
    start_time timestamptz,
    end_time timestamptz,
    parent_task_run_id text COLLATE "C",
    cache_key text COLLATE "C",
    cache_expires_at timestamptz,
    result_serializer text,
    tags jsonb,
    dependencies jsonb,
    inputs json,
    error jsonb,
    result bytea,
    -- Added by migration 0006: the attempts of a task run that took several.
    attempt_log jsonb,
    -- Added by migration 0007: the call's arguments, compared on replay.
    args_fingerprint text,
    -- Added by migration 0020: where a remote task runner ran the body.
    host text,
    PRIMARY KEY (flow_run_id, call_key)
) WITH (fillfactor = 90);
-- fillfactor: a task recorded as running and then as finished is updated in
-- place, usually as a HOT update.

CREATE UNIQUE INDEX task_runs_id ON task_runs (id);

-- One entry per cache key: the newest completed task run that produced it.
CREATE TABLE task_cache (
    cache_key text COLLATE "C" PRIMARY KEY,
    task_run_id text COLLATE "C" NOT NULL,
    expires_at timestamptz,
    created timestamptz NOT NULL
);

CREATE TABLE run_inputs (
    flow_run_id text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value json,
    PRIMARY KEY (flow_run_id, key)
);

CREATE TABLE logs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_run_id text COLLATE "C" NOT NULL,
    task_run_id text COLLATE "C",
    timestamp timestamptz NOT NULL,
    level integer NOT NULL,
    logger text NOT NULL,
    message text NOT NULL
);

CREATE INDEX logs_flow_run ON logs (flow_run_id, id);

-- Named leases: leader election for singleton duties.
CREATE TABLE leases (
    name text COLLATE "C" PRIMARY KEY,
    holder text COLLATE "C" NOT NULL,
    generation bigint NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Workers, each with its last heartbeat: who is alive, serving which queues.
CREATE TABLE workers (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    concurrency integer NOT NULL,
    running integer NOT NULL DEFAULT 0,
    started timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    stopped_at timestamptz,
    queues jsonb NOT NULL
);

CREATE TABLE deployments (
    name text COLLATE "C" PRIMARY KEY,
    id text COLLATE "C" NOT NULL,
    flow_name text NOT NULL,
    entrypoint text NOT NULL,
    work_queue text COLLATE "C" NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    concurrency_limit integer,
    collision_strategy text NOT NULL,
    paused boolean NOT NULL DEFAULT false,
    catchup boolean NOT NULL DEFAULT false,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL,
    scheduled_until timestamptz,
    description text,
    tags jsonb,
    parameters json NOT NULL,
    schedules jsonb NOT NULL,
    timeout_seconds double precision,
    retries integer NOT NULL DEFAULT 0,
    -- Added by migration 0008: the flow's parameters as a JSON Schema, recorded by a
    -- deploy that loaded its code (NULL: deployed through the API without one).
    parameter_schema json
);

-- Named global limits (concurrency or rate) and the slots taken from them.
CREATE TABLE limits (
    name text COLLATE "C" PRIMARY KEY,
    slots integer NOT NULL,
    per_seconds double precision,
    created timestamptz NOT NULL
);

-- A slot expires unless its holder renews it (a crashed holder frees it); a
-- rate limit's slots just expire at the end of their window.
CREATE TABLE limit_slots (
    name text COLLATE "C" NOT NULL,
    holder text COLLATE "C" NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (name, holder)
);
CREATE INDEX limit_slots_holder ON limit_slots (holder);

-- Named JSON values that flows, tasks and people share (`legato.variables.Variable`).
-- value holds the JSON text (the store never looks inside it).
CREATE TABLE variables (
    name text COLLATE "C" PRIMARY KEY,
    value text NOT NULL,
    tags text[] NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);

-- Artifacts: markdown, tables and links that runs publish (`legato.artifacts`).
-- data is JSON text the store never looks inside; flow_run_id and task_run_id
-- are NULL for an artifact created outside any run.
CREATE TABLE artifacts (
    id text COLLATE "C" PRIMARY KEY,
    key text COLLATE "C",
    type text NOT NULL,
    data text NOT NULL,
    description text,
    flow_run_id text COLLATE "C",
    task_run_id text COLLATE "C",
    created timestamptz NOT NULL
);
CREATE INDEX artifacts_flow_run ON artifacts (flow_run_id, created);
CREATE INDEX artifacts_key ON artifacts (key, created);

-- Keyed transactions that committed (`transaction(key=...)`): one row per key.
-- payload holds the results of the block's tasks and its values, encoded by
-- the engine (the store never looks inside). Kept by `legato db prune`.
CREATE TABLE transaction_records (
    key text COLLATE "C" PRIMARY KEY,
    flow_run_id text COLLATE "C" NOT NULL,
    committed_at timestamptz NOT NULL,
    payload bytea NOT NULL
);

-- Events: what happened, in the order the store recorded it (`legato.events`).
-- seq is allocated at insert, txid is the writing transaction. Concurrent writers
-- commit out of seq order, so an in-order reader reads only events of transactions
-- older than every one still open (pg_snapshot_xmin) in (txid, seq) order: nothing
-- it has passed can appear later.
CREATE TABLE events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    id text COLLATE "C" NOT NULL UNIQUE,
    event text COLLATE "C" NOT NULL,
    occurred timestamptz NOT NULL,
    received timestamptz NOT NULL,
    resource_id text COLLATE "C" NOT NULL,
    resource jsonb NOT NULL,
    related jsonb NOT NULL,
    payload jsonb NOT NULL,
    follows text COLLATE "C"
);
CREATE INDEX events_order ON events (txid, seq);
CREATE INDEX events_event ON events (event, seq);
CREATE INDEX events_received ON events (received);

-- Every resource an event names (its own with role '', and each related one), so
-- "events about X" is an index lookup, not a scan.
CREATE TABLE event_resources (
    resource_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    role text COLLATE "C" NOT NULL,
    PRIMARY KEY (resource_id, seq, role)
);
CREATE INDEX event_resources_seq ON event_resources (seq);

CREATE FUNCTION legato_index_event_resources() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_resources (resource_id, seq, role)
    SELECT NEW.resource_id, NEW.seq, ''
    UNION ALL
    SELECT r ->> 'legato.resource.id', NEW.seq, coalesce(r ->> 'legato.resource.role', '')
    FROM jsonb_array_elements(NEW.related) AS r
    WHERE r ->> 'legato.resource.id' IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER events_index_resources AFTER INSERT ON events
FOR EACH ROW EXECUTE FUNCTION legato_index_event_resources();

-- A flow run's state change writes its event in the same transaction as the change
-- (this trigger), whichever store operation made it: no state change's event can be
-- lost, and none is written for a change that rolled back.
CREATE FUNCTION legato_flow_run_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    state_name text := upper(substr(NEW.state, 1, 1)) || substr(NEW.state, 2);
    from_state text := NULL;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.state IS NOT DISTINCT FROM OLD.state THEN
            RETURN NULL;
        END IF;
        from_state := OLD.state;
    END IF;
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        replace(gen_random_uuid()::text, '-', ''),
        'legato.flow-run.' || state_name,
        clock_timestamp(), clock_timestamp(),
        'legato.flow-run.' || NEW.id,
        jsonb_build_object(
            'legato.resource.id', 'legato.flow-run.' || NEW.id,
            'legato.resource.name', NEW.name,
            'legato.state-name', state_name),
        (SELECT coalesce(jsonb_agg(label), '[]'::jsonb) FROM (
            SELECT jsonb_build_object('legato.resource.id', 'legato.flow.' || NEW.flow_name,
                                      'legato.resource.role', 'flow',
                                      'legato.resource.name', NEW.flow_name) AS label
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.deployment.' || NEW.deployment,
                                      'legato.resource.role', 'deployment',
                                      'legato.resource.name', NEW.deployment)
            WHERE NEW.deployment IS NOT NULL
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.work-queue.' || NEW.work_queue,
                                      'legato.resource.role', 'work-queue',
                                      'legato.resource.name', NEW.work_queue)
            WHERE NEW.work_queue IS NOT NULL
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.flow-run.' || NEW.parent_run_id,
                                      'legato.resource.role', 'parent-flow-run')
            WHERE NEW.parent_run_id IS NOT NULL
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.tag.' || t,
                                      'legato.resource.role', 'tag')
            FROM jsonb_array_elements_text(coalesce(NEW.tags, '[]'::jsonb)) AS t
        ) AS labels),
        jsonb_build_object(
            'from', from_state, 'to', NEW.state, 'message', NEW.state_message,
            'attempt', NEW.attempts, 'error_type', NEW.error ->> 'type',
            'error_message', NEW.error ->> 'message')
    );
    PERFORM pg_notify('legato_events_stored', '');
    RETURN NULL;
END $$;

CREATE TRIGGER flow_run_created_event AFTER INSERT ON flow_runs
FOR EACH ROW EXECUTE FUNCTION legato_flow_run_event();
CREATE TRIGGER flow_run_state_event AFTER UPDATE OF state ON flow_runs
FOR EACH ROW EXECUTE FUNCTION legato_flow_run_event();

-- Task runs: only failures and crashes write events. A completed task writes none,
-- so the sequential task path pays nothing for events (see docs/architecture.md).
CREATE FUNCTION legato_task_run_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    state_name text := upper(substr(NEW.state, 1, 1)) || substr(NEW.state, 2);
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.state IS NOT DISTINCT FROM OLD.state THEN
        RETURN NULL;
    END IF;
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        replace(gen_random_uuid()::text, '-', ''),
        'legato.task-run.' || state_name,
        clock_timestamp(), clock_timestamp(),
        'legato.task-run.' || NEW.id,
        jsonb_build_object(
            'legato.resource.id', 'legato.task-run.' || NEW.id,
            'legato.resource.name', NEW.name,
            'legato.state-name', state_name),
        (SELECT coalesce(jsonb_agg(label), '[]'::jsonb) FROM (
            SELECT jsonb_build_object('legato.resource.id', 'legato.flow-run.' || NEW.flow_run_id,
                                      'legato.resource.role', 'flow-run') AS label
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.task.' || NEW.task_name,
                                      'legato.resource.role', 'task',
                                      'legato.resource.name', NEW.task_name)
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.tag.' || t,
                                      'legato.resource.role', 'tag')
            FROM jsonb_array_elements_text(coalesce(NEW.tags, '[]'::jsonb)) AS t
        ) AS labels),
        jsonb_build_object(
            'to', NEW.state, 'attempt', NEW.attempts,
            'error_type', NEW.error ->> 'type', 'error_message', NEW.error ->> 'message')
    );
    PERFORM pg_notify('legato_events_stored', '');
    RETURN NULL;
END $$;

CREATE TRIGGER task_run_failed_event AFTER INSERT OR UPDATE OF state ON task_runs
FOR EACH ROW WHEN (NEW.state IN ('failed', 'crashed'))
EXECUTE FUNCTION legato_task_run_event();

-- Notification channels (secrets kept as environment variable NAMES) and the outbox of
-- deliveries that the sender works through: one in flight per channel, in id order.
CREATE TABLE notification_channels (
    name text COLLATE "C" PRIMARY KEY,
    type text NOT NULL,
    config jsonb NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);

CREATE TABLE notification_deliveries (
    id bigserial PRIMARY KEY,
    channel text COLLATE "C" NOT NULL,
    idempotency_key text COLLATE "C" NOT NULL UNIQUE,
    subject text NOT NULL,
    body text NOT NULL,
    payload jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error text,
    created timestamptz NOT NULL,
    delivered_at timestamptz,
    group_key text,
    lease_owner text,
    lease_expires timestamptz
);

CREATE INDEX notification_deliveries_open ON notification_deliveries (channel, id)
WHERE state IN ('pending', 'sending');

CREATE INDEX notification_deliveries_state ON notification_deliveries (state, id);

-- Automations (`legato.automations`): a trigger and actions, stored by name, with the
-- evaluator's state. Buckets, firings and action rows are written in the transaction
-- that moves the evaluator's cursor (commit_evaluation): a firing exists exactly when
-- the cursor passed the events that caused it. Times are epoch seconds.
CREATE TABLE automations (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    enabled boolean NOT NULL,
    spec text NOT NULL,
    created double precision NOT NULL,
    updated double precision NOT NULL
);

CREATE TABLE automation_buckets (
    automation_id text NOT NULL,
    bucket_key text NOT NULL,
    opened_at double precision NOT NULL,
    count integer NOT NULL,
    event_ids text NOT NULL,
    expires_at double precision,
    PRIMARY KEY (automation_id, bucket_key)
);
CREATE INDEX automation_buckets_expires ON automation_buckets (expires_at)
WHERE expires_at IS NOT NULL;

CREATE TABLE automation_firings (
    id text PRIMARY KEY,
    automation_id text NOT NULL,
    fired_at double precision NOT NULL,
    bucket_key text NOT NULL,
    event_ids text NOT NULL,
    reason text NOT NULL
);
CREATE INDEX automation_firings_automation ON automation_firings (automation_id, fired_at);

-- One row per action of a firing; idempotency_key = firing_id || ':' || action_index.
CREATE TABLE automation_actions (
    firing_id text NOT NULL,
    action_index integer NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    automation_id text NOT NULL,
    spec text NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at double precision NOT NULL,
    result text,
    PRIMARY KEY (firing_id, action_index)
);
CREATE INDEX automation_actions_due ON automation_actions (next_attempt_at)
WHERE state = 'pending';

CREATE TABLE evaluator_cursor (
    name text PRIMARY KEY,
    cursor text NOT NULL,
    updated double precision NOT NULL
);

-- Webhooks (`legato webhook`): POST /hooks/{slug} renders `template` into an event.
-- auth: none | secret | hmac; the secret is named by secret_env (an environment
-- variable of the server) or, when given plainly, kept in secret (never shown back).
CREATE TABLE webhooks (
    slug text COLLATE "C" PRIMARY KEY,
    description text NOT NULL,
    template text NOT NULL,
    auth text NOT NULL CHECK (auth IN ('none', 'secret', 'hmac')),
    secret_env text,
    secret text,
    enabled boolean NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);

-- Deadlines of flow runs (`legato.Deadline`), one row per run and deadline, written
-- with the run. due_at is NULL until the reference time is known (a "started"
-- deadline is armed by the trigger below when the run starts) and again once the
-- run ended; fired_at is set, compare-and-set, by the sweep that emits the
-- deadline-missed event in the same transaction.
CREATE TABLE flow_run_deadlines (
    run_id text COLLATE "C" NOT NULL,
    idx integer NOT NULL,
    reference text NOT NULL CHECK (reference IN ('scheduled', 'started')),
    within_seconds double precision NOT NULL,
    action text NOT NULL CHECK (action IN ('alert', 'cancel')),
    due_at timestamptz,
    fired_at timestamptz,
    PRIMARY KEY (run_id, idx)
);
CREATE INDEX flow_run_deadlines_due ON flow_run_deadlines (due_at)
WHERE fired_at IS NULL AND due_at IS NOT NULL;

CREATE FUNCTION legato_flow_run_deadlines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM flow_run_deadlines WHERE run_id = OLD.id;
    ELSIF NEW.state IS NOT DISTINCT FROM OLD.state THEN
        RETURN NULL;
    ELSIF NEW.state = 'running' THEN
        UPDATE flow_run_deadlines
        SET due_at = coalesce(NEW.start_time, clock_timestamp())
                     + make_interval(secs => within_seconds)
        WHERE run_id = NEW.id AND reference = 'started' AND due_at IS NULL
              AND fired_at IS NULL;
    ELSIF NEW.state IN ('completed', 'failed', 'crashed', 'cancelled') THEN
        UPDATE flow_run_deadlines SET due_at = NULL
        WHERE run_id = NEW.id AND fired_at IS NULL AND due_at IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER flow_run_deadlines_state AFTER UPDATE OF state ON flow_runs
FOR EACH ROW EXECUTE FUNCTION legato_flow_run_deadlines();
CREATE TRIGGER flow_run_deadlines_deleted AFTER DELETE ON flow_runs
FOR EACH ROW EXECUTE FUNCTION legato_flow_run_deadlines();

-- Scheduled runs by due time: the late-run sweep reads those past due.
CREATE INDEX flow_runs_scheduled_due ON flow_runs (scheduled_time) WHERE state = 'scheduled';

-- A deployment's deadlines (JSON list of {within, reference, action}), given to each
-- run it queues.
ALTER TABLE deployments ADD COLUMN deadlines text;

-- Alert rules' states (`legato.alerts`): per alert and key (a group key, or
-- '#rate:<channel>'), a JSON state; expires_at: when the leader looks at it again.
CREATE TABLE alert_states (
    alert text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    data jsonb NOT NULL,
    expires_at timestamptz,
    updated timestamptz NOT NULL,
    PRIMARY KEY (alert, key)
);

CREATE INDEX alert_states_due ON alert_states (expires_at) WHERE expires_at IS NOT NULL;

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

-- Events of deployments and workers, written by triggers in the same transaction as
-- the change (as flow runs' are): created, updated, paused, resumed and deleted
-- deployments; started and stopped workers. (A worker that stops without saying so
-- is reported `legato.worker.offline` by the leader's sweep.)
CREATE FUNCTION legato_deployment_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_now deployments := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    name_of text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        name_of := 'created';
    ELSIF TG_OP = 'DELETE' THEN
        name_of := 'deleted';
    ELSIF NEW.paused IS DISTINCT FROM OLD.paused THEN
        name_of := CASE WHEN NEW.paused THEN 'paused' ELSE 'resumed' END;
    ELSIF (NEW.flow_name, NEW.entrypoint, NEW.work_queue, NEW.priority, NEW.concurrency_limit,
           NEW.collision_strategy, NEW.catchup, NEW.description, NEW.timeout_seconds,
           NEW.retries, NEW.tags, NEW.schedules, NEW.parameters::text)
          IS DISTINCT FROM
          (OLD.flow_name, OLD.entrypoint, OLD.work_queue, OLD.priority, OLD.concurrency_limit,
           OLD.collision_strategy, OLD.catchup, OLD.description, OLD.timeout_seconds,
           OLD.retries, OLD.tags, OLD.schedules, OLD.parameters::text) THEN
        name_of := 'updated';
    ELSE
        RETURN NULL;  -- only its schedule's horizon moved
    END IF;
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        replace(gen_random_uuid()::text, '-', ''),
        'legato.deployment.' || name_of,
        clock_timestamp(), clock_timestamp(),
        'legato.deployment.' || row_now.name,
        jsonb_build_object('legato.resource.id', 'legato.deployment.' || row_now.name,
                           'legato.resource.name', row_now.name),
        jsonb_build_array(
            jsonb_build_object('legato.resource.id', 'legato.flow.' || row_now.flow_name,
                               'legato.resource.role', 'flow',
                               'legato.resource.name', row_now.flow_name),
            jsonb_build_object('legato.resource.id', 'legato.work-queue.' || row_now.work_queue,
                               'legato.resource.role', 'work-queue',
                               'legato.resource.name', row_now.work_queue)),
        jsonb_build_object('entrypoint', row_now.entrypoint, 'paused', row_now.paused)
    );
    PERFORM pg_notify('legato_events_stored', '');
    RETURN NULL;
END $$;

CREATE TRIGGER deployment_event AFTER INSERT OR UPDATE OR DELETE ON deployments
FOR EACH ROW EXECUTE FUNCTION legato_deployment_event();

CREATE FUNCTION legato_worker_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NOT (NEW.stopped_at IS NOT NULL AND OLD.stopped_at IS NULL) THEN
        RETURN NULL;
    END IF;
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        replace(gen_random_uuid()::text, '-', ''),
        CASE WHEN TG_OP = 'INSERT' THEN 'legato.worker.started' ELSE 'legato.worker.stopped' END,
        clock_timestamp(), clock_timestamp(),
        'legato.worker.' || NEW.id,
        jsonb_build_object('legato.resource.id', 'legato.worker.' || NEW.id,
                           'legato.resource.name', NEW.name),
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'legato.resource.id', 'legato.work-queue.' || q,
                    'legato.resource.role', 'work-queue', 'legato.resource.name', q)), '[]'::jsonb)
         FROM jsonb_array_elements_text(NEW.queues) AS q),
        jsonb_build_object('host', NEW.host, 'pid', NEW.pid, 'concurrency', NEW.concurrency)
    );
    PERFORM pg_notify('legato_events_stored', '');
    RETURN NULL;
END $$;

CREATE TRIGGER worker_event AFTER INSERT OR UPDATE OF stopped_at ON workers
FOR EACH ROW EXECUTE FUNCTION legato_worker_event();

-- Added by migration 0021. Traces (issue 14): the W3C traceparent of a flow run's
-- `flow NAME` span, so that every attempt, in any process, continues the trace.
ALTER TABLE flow_runs ADD COLUMN trace_context text;

-- Added by migration 0022. Metrics (issue 14): aggregate counts of flow runs kept by the run table's own
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

-- Task runs are counted at every attempt end of their flow run (migration 0024): the
-- task runs of that run that reached a final state and ended after the run's mark in
-- task_run_marks; the mark then moves to the newest end. One increment is one task run
-- record reaching a final state; nothing is subtracted and nothing is added to the
-- per-task path. cached: those whose result came from the cache.
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

-- (migration 0025: the counts, duration histograms and task counts are folded at scrape
-- time from the events index; a run's deletion and its start lateness stay triggers)
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

CREATE TABLE task_run_marks (
    flow_run_id text COLLATE "C" PRIMARY KEY,
    counted_until timestamptz NOT NULL
);

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

-- Added by migration 0025. The flow run metric tables above (flow_run_counts,
-- flow_run_histograms, task_run_counts, task_run_marks) are folded at scrape time from
-- the events index, not kept by a trigger on flow_runs (which cost every state
-- change): flow_run_metric_mark holds the last (txid, seq) folded (one row).
CREATE TABLE flow_run_metric_mark (
    id integer PRIMARY KEY CHECK (id = 1),
    txid xid8 NOT NULL,
    seq bigint NOT NULL
);

-- Added by migration 0023. Traces, round 2 (issue 14): the trace and span ids (hex) of
-- the span a log line was written in, when traces were on; NULL otherwise.
ALTER TABLE logs ADD COLUMN trace_id text;
ALTER TABLE logs ADD COLUMN span_id text;

-- Added by migration 0026 (issue 15): model calls, their usage counters, prompts.
CREATE TABLE llm_calls (
    flow_run_id text COLLATE "C" NOT NULL,
    call_key text COLLATE "C" NOT NULL,
    try_number integer NOT NULL,
    id text COLLATE "C" NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    outcome text NOT NULL,
    started timestamptz NOT NULL,
    latency_seconds double precision NOT NULL,
    input_tokens bigint NOT NULL,
    output_tokens bigint NOT NULL,
    cached_tokens bigint NOT NULL,
    reasoning_tokens bigint NOT NULL,
    cost_usd double precision,
    finish_reason text,
    params text NOT NULL,
    request text NOT NULL,
    response text NOT NULL,
    error text,
    prompt_name text,
    prompt_version text,
    copied_from text COLLATE "C",
    PRIMARY KEY (flow_run_id, call_key, try_number)
);

CREATE UNIQUE INDEX llm_calls_id ON llm_calls (id);
CREATE INDEX llm_calls_started ON llm_calls (started);

-- Monotonic totals per flow, deployment ('' for none), provider and model for the
-- metrics, kept by the trigger below as tries are written (a fork's copies are not
-- counted again); pruning runs never lowers them.
CREATE TABLE llm_usage_counters (
    flow_name text NOT NULL,
    deployment text NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    calls bigint NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    cached_tokens bigint NOT NULL DEFAULT 0,
    reasoning_tokens bigint NOT NULL DEFAULT 0,
    cost_usd double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (flow_name, deployment, provider, model)
);

CREATE FUNCTION legato_llm_call_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO llm_usage_counters (
        flow_name, deployment, provider, model, calls, input_tokens, output_tokens,
        cached_tokens, reasoning_tokens, cost_usd
    )
    SELECT f.flow_name, coalesce(f.deployment, ''), NEW.provider, NEW.model, 1,
           NEW.input_tokens, NEW.output_tokens, NEW.cached_tokens, NEW.reasoning_tokens,
           coalesce(NEW.cost_usd, 0)
    FROM flow_runs AS f WHERE f.id = NEW.flow_run_id
    ON CONFLICT (flow_name, deployment, provider, model) DO UPDATE SET
        calls = llm_usage_counters.calls + 1,
        input_tokens = llm_usage_counters.input_tokens + excluded.input_tokens,
        output_tokens = llm_usage_counters.output_tokens + excluded.output_tokens,
        cached_tokens = llm_usage_counters.cached_tokens + excluded.cached_tokens,
        reasoning_tokens = llm_usage_counters.reasoning_tokens + excluded.reasoning_tokens,
        cost_usd = llm_usage_counters.cost_usd + excluded.cost_usd;
    RETURN NULL;
END $$;

CREATE TRIGGER llm_calls_counted AFTER INSERT ON llm_calls
FOR EACH ROW WHEN (NEW.copied_from IS NULL)
EXECUTE FUNCTION legato_llm_call_counted();

-- Prompt versions, stored once per (name, content hash); never pruned. seq orders
-- versions made in the same instant.
CREATE TABLE prompts (
    name text COLLATE "C" NOT NULL,
    version text COLLATE "C" NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    template text NOT NULL,
    created timestamptz NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE INDEX prompts_created ON prompts (name, created);

-- Streamed model calls (issue 15): the text so far of a call in flight, one row per
-- call replaced in place (best effort, for the run page's live view), removed when
-- the call ends and with its run when the run is pruned.
CREATE TABLE llm_streams (
    flow_run_id text COLLATE "C" NOT NULL,
    call_key text COLLATE "C" NOT NULL,
    text text NOT NULL,
    updated timestamptz NOT NULL,
    PRIMARY KEY (flow_run_id, call_key)
);
