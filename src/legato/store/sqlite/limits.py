"""Global limits on SQLite: concurrency and rate limits that task tags refer to.

Mixed into `SQLiteStore`. Taking a slot is one BEGIN IMMEDIATE transaction
(drop expired slots, count, insert), so SQLite's single writer makes it exact
across processes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from legato.records import Limit
from legato.store.notifications import LIMIT_SLOTS_FREED
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES

_NAMES_FILTER = "WHERE l.name IN (SELECT value FROM json_each(?))"


class SQLiteLimits:
    """The limits part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def set_limit(
        self, name: str, slots: int, *, per_seconds: float | None = None, now: datetime
    ) -> Limit:
        params = (name, slots, per_seconds, rows.epoch(now))
        row = self._db.write(lambda conn: conn.execute(QUERIES["set_limit"], params).fetchone())
        return Limit(name=row[0], slots=row[1], per_seconds=row[2])

    def list_limits(self, *, now: datetime, names: Sequence[str] | None = None) -> list[Limit]:
        sql = QUERIES["list_limits"].replace("{names}", "" if names is None else _NAMES_FILTER)
        params: tuple[object, ...] = (rows.epoch(now),)
        if names is not None:
            params += (rows.to_json(list(names), "limit names"),)
        found = self._db.fetchall(sql, params)
        return [Limit(name=r[0], slots=r[1], per_seconds=r[2], active=r[3]) for r in found]

    def delete_limit(self, name: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            conn.execute(QUERIES["delete_limit_slots"], (name,))
            return conn.execute(QUERIES["delete_limit"], (name,)).rowcount > 0

        return self._db.write(delete)

    def acquire_limit_slot(
        self, name: str, holder: str, *, now: datetime, ttl_seconds: float
    ) -> bool:
        at = rows.epoch(now)

        def acquire(conn: sqlite3.Connection) -> bool:
            limit = conn.execute(QUERIES["get_limit"], (name,)).fetchone()
            if limit is None:
                return False
            slots, per_seconds = limit
            conn.execute(QUERIES["drop_expired_slots"], (name, at))
            if conn.execute(QUERIES["holds_slot"], (name, holder)).fetchone() is not None:
                return True
            if conn.execute(QUERIES["count_slots"], (name,)).fetchone()[0] >= slots:
                return False
            lasts = per_seconds if per_seconds is not None else ttl_seconds
            conn.execute(QUERIES["insert_slot"], (name, holder, at, at + lasts))
            return True

        return self._db.write(acquire)

    def renew_limit_slots(
        self, holders: Sequence[str], *, now: datetime, ttl_seconds: float
    ) -> None:
        if not holders:
            return
        params = (rows.epoch(now) + ttl_seconds, rows.to_json(list(holders), "slot holders"))
        self._db.write(lambda conn: conn.execute(QUERIES["renew_slots"], params))

    def release_limit_slots(self, holder: str) -> None:
        def release(conn: sqlite3.Connection) -> None:
            if conn.execute(QUERIES["release_slots"], (holder,)).rowcount:
                conn.execute(QUERIES["notify"], (LIMIT_SLOTS_FREED, ""))

        self._db.write(release)
