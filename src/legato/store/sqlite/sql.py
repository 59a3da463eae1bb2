"""The SQL files beside this module: named queries, the schema and the migrations."""

from __future__ import annotations

import sqlite3

from legato.store.sqlfiles import (
    Migration,
    load_migrations,
    parse_queries,
    read_sql,
    strip_comment_lines,
)

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "QUERIES",
    "SCHEMA",
    "Migration",
    "parse_queries",
    "split_statements",
]

_PACKAGE = __name__.rpartition(".")[0]


def split_statements(script: str) -> list[str]:
    """The statements of a SQL script, one per item.

    ``executescript`` would commit any open transaction first, so scripts are
    run statement by statement inside our own transaction instead; SQLite's
    own ``complete_statement`` decides where a statement ends.
    """
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if strip_comment_lines(pending):
        raise ValueError(f"SQL script ends inside a statement: {pending.strip()[:80]!r}")
    return statements


QUERIES: dict[str, str] = parse_queries(read_sql(_PACKAGE, "queries.sql"))
SCHEMA: list[str] = split_statements(read_sql(_PACKAGE, "schema.sql"))
MIGRATIONS: list[Migration] = load_migrations(_PACKAGE, split_statements)
LATEST_VERSION: int = MIGRATIONS[-1].version
