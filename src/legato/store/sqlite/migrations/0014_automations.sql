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
