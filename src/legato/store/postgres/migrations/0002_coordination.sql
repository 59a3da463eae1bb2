-- Runs queued for workers, and leases (leader election).
ALTER TABLE flow_runs ADD COLUMN work_queue text COLLATE "C";
ALTER TABLE flow_runs ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE flow_runs ADD COLUMN scheduled_time timestamptz;

-- The claim order of the runs waiting in each queue; only waiting runs are in it.
CREATE INDEX flow_runs_queued ON flow_runs (work_queue, priority DESC, scheduled_time)
    WHERE state = 'scheduled';

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
