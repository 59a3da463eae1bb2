-- Runs queued for workers, leases (leader election), notification counters.
ALTER TABLE flow_runs ADD COLUMN work_queue TEXT;
ALTER TABLE flow_runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flow_runs ADD COLUMN scheduled_time REAL;

-- The claim order of the runs waiting in each queue; only waiting runs are in it.
CREATE INDEX flow_runs_queued ON flow_runs (work_queue, priority DESC, scheduled_time)
WHERE state = 'scheduled';

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
