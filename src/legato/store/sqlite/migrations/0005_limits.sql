-- Named global limits (concurrency or rate) and the slots taken from them.
CREATE TABLE limits (
    name TEXT PRIMARY KEY,
    slots INTEGER NOT NULL,
    per_seconds REAL,
    created REAL NOT NULL
) WITHOUT ROWID;

-- A slot expires unless its holder renews it (a crashed holder frees it); a
-- rate limit's slots just expire at the end of their window.
CREATE TABLE limit_slots (
    name TEXT NOT NULL,
    holder TEXT NOT NULL,
    acquired_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (name, holder)
) WITHOUT ROWID;
CREATE INDEX limit_slots_holder ON limit_slots (holder);
