-- Deployments, and the runs made from them.
ALTER TABLE flow_runs ADD COLUMN deployment text COLLATE "C";
ALTER TABLE flow_runs ADD COLUMN idempotency_key text COLLATE "C";
ALTER TABLE flow_runs ADD COLUMN concurrency_key text COLLATE "C";
ALTER TABLE flow_runs ADD COLUMN concurrency_limit integer;

-- One run per key (a schedule slot's run): a second insert finds the first.
CREATE UNIQUE INDEX flow_runs_idempotency ON flow_runs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX flow_runs_deployment ON flow_runs (deployment, created, seq)
    WHERE deployment IS NOT NULL;
-- Counting the active runs of a concurrency key when claiming.
CREATE INDEX flow_runs_concurrency ON flow_runs (concurrency_key, state)
    WHERE concurrency_key IS NOT NULL;

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
    retries integer NOT NULL DEFAULT 0
);
