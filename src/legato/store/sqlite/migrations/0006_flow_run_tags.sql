-- One row per (run, distinct tag): a tag filter walks the runs that carry the
-- tag, newest first, instead of every run. seq is insertion order, as the rowid
-- of flow_runs is, so it breaks ties between equal creation times the same way.
-- Written with the run, deleted with it (no foreign key: the store keeps integrity).
CREATE TABLE flow_run_tags (
    seq INTEGER PRIMARY KEY,
    tag TEXT NOT NULL,
    created REAL NOT NULL,
    run_id TEXT NOT NULL,
    UNIQUE (run_id, tag)
);
CREATE INDEX flow_run_tags_tag ON flow_run_tags (tag, created);

-- The tags of the runs stored so far, in the order the runs were stored.
INSERT OR IGNORE INTO flow_run_tags (tag, created, run_id)
SELECT j.value, f.created, f.id
FROM flow_runs AS f, json_each(f.tags) AS j
WHERE f.tags IS NOT NULL
ORDER BY f.rowid, j.key;
