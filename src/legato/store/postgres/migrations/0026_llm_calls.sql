-- AI-native workflows (issue 15): durable model calls and versioned prompts.
-- llm_calls holds one row per answered try of a model call, written fenced by the
-- run's owner as soon as the answer arrives; (flow_run_id, call_key, try_number) is
-- written once (first write wins: a resumed run never pays twice for a try).
-- copied_from names the run a fork copied the row from (its cost was paid there).
CREATE TABLE llm_calls (
    flow_run_id text COLLATE "C" NOT NULL,
    call_key text COLLATE "C" NOT NULL,
    try_number integer NOT NULL,
    id text COLLATE "C" NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    outcome text NOT NULL,
    started timestamptz NOT NULL,
    latency_seconds double precision NOT NULL,
    input_tokens bigint NOT NULL,
    output_tokens bigint NOT NULL,
    cached_tokens bigint NOT NULL,
    reasoning_tokens bigint NOT NULL,
    cost_usd double precision,
    finish_reason text,
    params text NOT NULL,
    request text NOT NULL,
    response text NOT NULL,
    error text,
    prompt_name text,
    prompt_version text,
    copied_from text COLLATE "C",
    PRIMARY KEY (flow_run_id, call_key, try_number)
);

CREATE UNIQUE INDEX llm_calls_id ON llm_calls (id);
CREATE INDEX llm_calls_started ON llm_calls (started);

-- Monotonic totals per flow, deployment ('' for none), provider and model for the
-- metrics, kept by the trigger below as tries are written (a fork's copies are not
-- counted again); pruning runs never lowers them.
CREATE TABLE llm_usage_counters (
    flow_name text NOT NULL,
    deployment text NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    calls bigint NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    cached_tokens bigint NOT NULL DEFAULT 0,
    reasoning_tokens bigint NOT NULL DEFAULT 0,
    cost_usd double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (flow_name, deployment, provider, model)
);

CREATE FUNCTION legato_llm_call_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO llm_usage_counters (
        flow_name, deployment, provider, model, calls, input_tokens, output_tokens,
        cached_tokens, reasoning_tokens, cost_usd
    )
    SELECT f.flow_name, coalesce(f.deployment, ''), NEW.provider, NEW.model, 1,
           NEW.input_tokens, NEW.output_tokens, NEW.cached_tokens, NEW.reasoning_tokens,
           coalesce(NEW.cost_usd, 0)
    FROM flow_runs AS f WHERE f.id = NEW.flow_run_id
    ON CONFLICT (flow_name, deployment, provider, model) DO UPDATE SET
        calls = llm_usage_counters.calls + 1,
        input_tokens = llm_usage_counters.input_tokens + excluded.input_tokens,
        output_tokens = llm_usage_counters.output_tokens + excluded.output_tokens,
        cached_tokens = llm_usage_counters.cached_tokens + excluded.cached_tokens,
        reasoning_tokens = llm_usage_counters.reasoning_tokens + excluded.reasoning_tokens,
        cost_usd = llm_usage_counters.cost_usd + excluded.cost_usd;
    RETURN NULL;
END $$;

CREATE TRIGGER llm_calls_counted AFTER INSERT ON llm_calls
FOR EACH ROW WHEN (NEW.copied_from IS NULL)
EXECUTE FUNCTION legato_llm_call_counted();

-- Prompt versions, stored once per (name, content hash); never pruned. seq orders
-- versions made in the same instant.
CREATE TABLE prompts (
    name text COLLATE "C" NOT NULL,
    version text COLLATE "C" NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    template text NOT NULL,
    created timestamptz NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE INDEX prompts_created ON prompts (name, created);
