-- Alert rules' states (`legato.alerts`): per alert and key (a group key, or
-- '#rate:<channel>'), a JSON state; expires_at: when the leader looks at it again.
CREATE TABLE alert_states (
    alert TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    expires_at REAL,
    updated REAL NOT NULL,
    PRIMARY KEY (alert, key)
) WITHOUT ROWID;

CREATE INDEX alert_states_due ON alert_states (expires_at) WHERE expires_at IS NOT NULL;
