-- Webhooks (`legato webhook`): POST /hooks/{slug} renders `template` into an event.
-- auth: none | secret | hmac; the secret is named by secret_env (an environment
-- variable of the server) or, when given plainly, kept in secret (never shown back).
CREATE TABLE webhooks (
    slug text COLLATE "C" PRIMARY KEY,
    description text NOT NULL,
    template text NOT NULL,
    auth text NOT NULL CHECK (auth IN ('none', 'secret', 'hmac')),
    secret_env text,
    secret text,
    enabled boolean NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);
