-- Streamed model calls (issue 15): the text so far of a call in flight, one row per
-- call replaced in place (best effort, for the run page's live view), removed when
-- the call ends and with its run when the run is pruned.
CREATE TABLE llm_streams (
    flow_run_id TEXT NOT NULL,
    call_key TEXT NOT NULL,
    text TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (flow_run_id, call_key)
);
