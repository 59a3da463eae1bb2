"""The SQL files beside this module: named queries, the schema and the migrations."""

from __future__ import annotations

from legato.store.sqlfiles import Migration, load_migrations, parse_queries, read_sql

__all__ = ["LATEST_VERSION", "MIGRATIONS", "QUERIES", "SCHEMA", "Migration"]

_PACKAGE = __name__.rpartition(".")[0]


def _whole(script: str) -> list[str]:
    # PostgreSQL runs a script of several statements in one simple-protocol
    # call (psycopg does that for a query without parameters), inside the
    # caller's transaction: no need to split it.
    return [script]


QUERIES: dict[str, str] = parse_queries(read_sql(_PACKAGE, "queries.sql"))
SCHEMA: str = read_sql(_PACKAGE, "schema.sql")
MIGRATIONS: list[Migration] = load_migrations(_PACKAGE, _whole)
LATEST_VERSION: int = MIGRATIONS[-1].version
