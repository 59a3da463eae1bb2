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
