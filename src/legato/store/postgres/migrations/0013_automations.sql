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
