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
    result BLOB
);
