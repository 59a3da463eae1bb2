-- Notification channels (secrets kept as environment variable NAMES) and the outbox of
-- deliveries that the sender works through: one in flight per channel, in id order.
CREATE TABLE notification_channels (
    name text COLLATE "C" PRIMARY KEY,
    type text NOT NULL,
    config jsonb NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);

CREATE TABLE notification_deliveries (
    id bigserial PRIMARY KEY,
    channel text COLLATE "C" NOT NULL,
    idempotency_key text COLLATE "C" NOT NULL UNIQUE,
    subject text NOT NULL,
    body text NOT NULL,
    payload jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error text,
    created timestamptz NOT NULL,
    delivered_at timestamptz,
    group_key text,
    lease_owner text,
    lease_expires timestamptz
);

CREATE INDEX notification_deliveries_open ON notification_deliveries (channel, id)
WHERE state IN ('pending', 'sending');

CREATE INDEX notification_deliveries_state ON notification_deliveries (state, id);
