-- Named global limits (concurrency or rate) and the slots taken from them.
CREATE TABLE limits (
    name text COLLATE "C" PRIMARY KEY,
    slots integer NOT NULL,
    per_seconds double precision,
    created timestamptz NOT NULL
);

-- A slot expires unless its holder renews it (a crashed holder frees it); a
-- rate limit's slots just expire at the end of their window.
CREATE TABLE limit_slots (
    name text COLLATE "C" NOT NULL,
    holder text COLLATE "C" NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (name, holder)
);
CREATE INDEX limit_slots_holder ON limit_slots (holder);
