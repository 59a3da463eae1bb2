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
