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
