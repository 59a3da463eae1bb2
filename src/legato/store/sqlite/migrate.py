"""Create or upgrade the schema of a SQLite store when it is opened."""

from __future__ import annotations

import sqlite3
import time

from legato.errors import SchemaVersionError, StoreError
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import LATEST_VERSION, MIGRATIONS, QUERIES, SCHEMA

_EMPTY = -1


def _version(conn: sqlite3.Connection, path: str) -> int:
    """The applied schema version, or _EMPTY for a database with nothing in it."""
    if conn.execute(QUERIES["schema_object_count"]).fetchone()[0] == 0:
        return _EMPTY
    if conn.execute(QUERIES["has_migrations_table"]).fetchone()[0] == 0:
        raise StoreError(
            f"{path} is an SQLite database but not a legato store (it has no "
            f"schema_migrations table); point LEGATO_DATABASE_URL at another file"
        )
    version = conn.execute(QUERIES["schema_version"]).fetchone()[0]
    return int(version or 0)


def _check_not_newer(version: int, path: str) -> None:
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"the store {path} has schema version {version}, but this legato only knows "
            f"versions up to {LATEST_VERSION}: it was written by a newer legato; upgrade "
            f"legato (pip install -U legato) to use it"
        )


def ensure_schema(db: Database) -> list[int]:
    """Bring the database to the newest schema this code knows.

    Returns what this call did, as the PostgreSQL store's does: ``[LATEST_VERSION]``
    when it created the schema, the migrations it applied, or ``[]``.

    An empty database gets schema.sql at once; an older one gets each pending
    migration in its own transaction. Every step re-reads the version inside
    its write transaction, so processes opening the file together are safe.
    """
    path = db.path
    version = db.read(lambda conn: _version(conn, path))
    _check_not_newer(version, path)
    if version == LATEST_VERSION:
        return []  # the usual case: no write lock taken on open

    def create(conn: sqlite3.Connection) -> bool:
        if _version(conn, path) != _EMPTY:
            return False  # another process got there first
        for statement in SCHEMA:
            conn.execute(statement)
        conn.execute(QUERIES["record_migration"], (LATEST_VERSION, time.time()))
        return True

    applied: list[int] = []
    if version == _EMPTY:
        if db.write(create):
            applied.append(LATEST_VERSION)
        version = db.read(lambda conn: _version(conn, path))

    for migration in MIGRATIONS[max(version, 0) :]:

        def apply(conn: sqlite3.Connection, number: int = migration.version) -> bool:
            current = _version(conn, path)
            _check_not_newer(current, path)
            if current >= number:
                return False
            if current != number - 1:
                raise StoreError(f"the store {path} at version {current} cannot take {number}")
            for statement in MIGRATIONS[number - 1].statements:
                conn.execute(statement)
            conn.execute(QUERIES["record_migration"], (number, time.time()))
            return True

        if db.write(apply):
            applied.append(migration.version)
    return applied
