-- Named JSON values that flows, tasks and people share (`legato.variables.Variable`).
-- value holds the JSON text (the store never looks inside it), tags a JSON list.
CREATE TABLE variables (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    tags TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;
