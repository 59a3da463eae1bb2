-- One row per (run, distinct tag): a tag filter walks the runs that carry the
-- tag, newest first, instead of every run. created and seq are copies of the
-- run's (neither ever changes), so the (tag, created, seq) index gives the
-- order of every other listing. Written with the run, deleted with it.
CREATE TABLE flow_run_tags (
    created timestamptz NOT NULL,
    seq bigint NOT NULL,
    run_id text COLLATE "C" NOT NULL,
    tag text COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE INDEX flow_run_tags_tag ON flow_run_tags (tag, created, seq);

-- The tags of the runs stored so far.
INSERT INTO flow_run_tags (created, seq, run_id, tag)
SELECT DISTINCT f.created, f.seq, f.id, t.tag
FROM flow_runs AS f, jsonb_array_elements_text(f.tags) AS t (tag)
WHERE jsonb_typeof(f.tags) = 'array';
