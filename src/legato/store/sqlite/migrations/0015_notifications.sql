-- Notification channels (secrets kept as environment variable NAMES) and the outbox of
-- deliveries that the sender works through: one in flight per channel, in id order.
CREATE TABLE notification_channels (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    config TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE notification_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created REAL NOT NULL,
    delivered_at REAL,
    group_key TEXT,
    lease_owner TEXT,
    lease_expires REAL
);

CREATE INDEX notification_deliveries_open ON notification_deliveries (channel, id)
WHERE state IN ('pending', 'sending');

CREATE INDEX notification_deliveries_state ON notification_deliveries (state, id);
