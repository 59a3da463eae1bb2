-- AI-native workflows (issue 15): durable model calls and versioned prompts.
-- llm_calls holds one row per answered try of a model call, written fenced by the
-- run's owner as soon as the answer arrives; (flow_run_id, call_key, try_number) is
-- written once (first write wins: a resumed run never pays twice for a try).
-- copied_from names the run a fork copied the row from (its cost was paid there).
CREATE TABLE llm_calls (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    flow_run_id TEXT NOT NULL,
    call_key TEXT NOT NULL,
    try_number INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    outcome TEXT NOT NULL,
    started REAL NOT NULL,
    latency_seconds REAL NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_usd REAL,
    finish_reason TEXT,
    params TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    error TEXT,
    prompt_name TEXT,
    prompt_version TEXT,
    copied_from TEXT
);

CREATE UNIQUE INDEX llm_calls_try ON llm_calls (flow_run_id, call_key, try_number);
CREATE UNIQUE INDEX llm_calls_id ON llm_calls (id);
CREATE INDEX llm_calls_started ON llm_calls (started);

-- Monotonic totals per flow, deployment ('' for none), provider and model for the
-- metrics, kept by the trigger below as tries are written (a fork's copies are not
-- counted again); pruning runs never lowers them.
CREATE TABLE llm_usage_counters (
    flow_name TEXT NOT NULL,
    deployment TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (flow_name, deployment, provider, model)
) WITHOUT ROWID;

CREATE TRIGGER llm_calls_counted AFTER INSERT ON llm_calls
WHEN NEW.copied_from IS NULL
BEGIN
    INSERT INTO llm_usage_counters (
        flow_name, deployment, provider, model, calls, input_tokens, output_tokens,
        cached_tokens, reasoning_tokens, cost_usd
    )
    SELECT f.flow_name, coalesce(f.deployment, ''), NEW.provider, NEW.model, 1,
           NEW.input_tokens, NEW.output_tokens, NEW.cached_tokens, NEW.reasoning_tokens,
           coalesce(NEW.cost_usd, 0)
    FROM flow_runs AS f WHERE f.id = NEW.flow_run_id
    ON CONFLICT DO UPDATE SET
        calls = calls + 1,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cached_tokens = cached_tokens + excluded.cached_tokens,
        reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
        cost_usd = cost_usd + excluded.cost_usd;
END;

-- Prompt versions, stored once per (name, content hash); never pruned. seq orders
-- versions made in the same instant.
CREATE TABLE prompts (
    seq INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    template TEXT NOT NULL,
    created REAL NOT NULL
);

CREATE UNIQUE INDEX prompts_version ON prompts (name, version);
CREATE INDEX prompts_created ON prompts (name, created);
