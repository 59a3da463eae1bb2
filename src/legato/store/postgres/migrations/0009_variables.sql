-- Named JSON values that flows, tasks and people share (`legato.variables.Variable`).
-- value holds the JSON text (the store never looks inside it).
CREATE TABLE variables (
    name text COLLATE "C" PRIMARY KEY,
    value text NOT NULL,
    tags text[] NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);
