"""Create or upgrade the schema of a PostgreSQL store when it is opened.

The usual open reads the version and finds nothing to do, taking no lock.
Otherwise one transaction takes a transaction-level advisory lock (released
at commit or rollback, even if the process dies), reads the version again
and brings the schema up to date; DDL is transactional in PostgreSQL, so a
failed migration leaves nothing half-done. Processes opening the store
together queue on the lock, and all but the first find the work done.
"""

from __future__ import annotations

import psycopg

from legato.errors import SchemaVersionError, StoreError
from legato.store.postgres.connection import Connection, Database
from legato.store.postgres.sql import LATEST_VERSION, MIGRATIONS, QUERIES, SCHEMA

# Any fixed 64-bit number; legato's migrations lock is this one ("legato" in ASCII).
MIGRATION_LOCK_KEY = 0x6C6567_61746F
_EMPTY = -1


def _version(conn: Connection, where: str) -> int:
    """The applied schema version, or _EMPTY for a database without legato's tables."""
    row = conn.execute(QUERIES["schema_state"]).fetchone()
    has_migrations, has_runs = bool(row and row[0]), bool(row and row[1])
    if not has_migrations:
        if has_runs:
            raise StoreError(
                f"{where} has a flow_runs table but no schema_migrations table: it is "
                f"not a legato store; point LEGATO_DATABASE_URL at another database "
                f"(or another schema, with ?options=-csearch_path%3Dlegato)"
            )
        return _EMPTY
    found = conn.execute(QUERIES["schema_version"]).fetchone()
    return int(found[0] or 0) if found else 0


def _check_not_newer(version: int, where: str) -> None:
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"the store {where} has schema version {version}, but this legato only knows "
            f"versions up to {LATEST_VERSION}: it was written by a newer legato; upgrade "
            f"legato (pip install -U 'legato[postgres]') to use it"
        )


def ensure_schema(db: Database) -> list[int]:
    """Bring the database to the newest schema this code knows.

    Returns what this call did: ``[LATEST_VERSION]`` when it created the
    schema, the numbers of the migrations it applied, or ``[]`` when the
    schema was already current (another process may have done the work).
    """
    where = db.display_url
    conn = db.connect()
    try:
        try:
            version = _version(conn, where)
            conn.rollback()  # end the read-only transaction psycopg opened
            _check_not_newer(version, where)
            if version == LATEST_VERSION:
                return []
            with conn.transaction():
                return _migrate_locked(conn, where)
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot create or upgrade the schema of the PostgreSQL store {where}: "
                f"{db.redact(str(exc)).strip()}"
            ) from exc
    finally:
        conn.close()


def _migrate_locked(conn: Connection, where: str) -> list[int]:
    conn.execute(QUERIES["migration_lock"], (MIGRATION_LOCK_KEY,))
    version = _version(conn, where)  # again, now that we hold the lock
    _check_not_newer(version, where)
    if version == _EMPTY:
        conn.execute(SCHEMA)
        conn.execute(QUERIES["record_migration"], (LATEST_VERSION,))
        return [LATEST_VERSION]
    applied: list[int] = []
    for migration in MIGRATIONS[version:]:
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute(QUERIES["record_migration"], (migration.version,))
        applied.append(migration.version)
    return applied
