-- Alert rules' states (`legato.alerts`): per alert and key (a group key, or
-- '#rate:<channel>'), a JSON state; expires_at: when the leader looks at it again.
CREATE TABLE alert_states (
    alert text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    data jsonb NOT NULL,
    expires_at timestamptz,
    updated timestamptz NOT NULL,
    PRIMARY KEY (alert, key)
);

CREATE INDEX alert_states_due ON alert_states (expires_at) WHERE expires_at IS NOT NULL;
