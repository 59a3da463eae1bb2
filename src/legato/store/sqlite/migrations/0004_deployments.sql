-- Deployments, and the runs made from them.
ALTER TABLE flow_runs ADD COLUMN deployment TEXT;
ALTER TABLE flow_runs ADD COLUMN idempotency_key TEXT;
ALTER TABLE flow_runs ADD COLUMN concurrency_key TEXT;
ALTER TABLE flow_runs ADD COLUMN concurrency_limit INTEGER;

-- One run per key (a schedule slot's run): a second insert finds the first.
CREATE UNIQUE INDEX flow_runs_idempotency ON flow_runs (idempotency_key)
WHERE idempotency_key IS NOT NULL;
CREATE INDEX flow_runs_deployment ON flow_runs (deployment, created)
WHERE deployment IS NOT NULL;
-- Counting the active runs of a concurrency key when claiming.
CREATE INDEX flow_runs_concurrency ON flow_runs (concurrency_key, state)
WHERE concurrency_key IS NOT NULL;

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
    retries INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
