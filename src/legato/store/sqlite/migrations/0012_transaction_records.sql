-- Keyed transactions that committed (`transaction(key=...)`): one row per key.
-- payload holds the results of the block's tasks and its values, encoded by
-- the engine (the store never looks inside). Kept by `legato db prune`.
CREATE TABLE transaction_records (
    key TEXT PRIMARY KEY,
    flow_run_id TEXT NOT NULL,
    committed_at REAL NOT NULL,
    payload BLOB NOT NULL
) WITHOUT ROWID;
