-- Webhooks (`legato webhook`): POST /hooks/{slug} renders `template` into an event.
-- auth: none | secret | hmac; the secret is named by secret_env (an environment
-- variable of the server) or, when given plainly, kept in secret (never shown back).
CREATE TABLE webhooks (
    slug TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    template TEXT NOT NULL,
    auth TEXT NOT NULL CHECK (auth IN ('none', 'secret', 'hmac')),
    secret_env TEXT,
    secret TEXT,
    enabled INTEGER NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;
