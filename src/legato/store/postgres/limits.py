"""Global limits on PostgreSQL: concurrency and rate limits that task tags refer to.

Mixed into `PostgresStore`. Taking a slot is a short transaction that locks
the limit's row first (``FOR UPDATE``), so processes on any number of machines
count its slots one at a time and never take more than it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from legato.records import Limit
from legato.store.postgres.connection import Connection, Database
from legato.store.postgres.sql import QUERIES


class PostgresLimits:
    """The limits part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def set_limit(
        self, name: str, slots: int, *, per_seconds: float | None = None, now: datetime
    ) -> Limit:
        row = self._db.fetchone(QUERIES["set_limit"], (name, slots, per_seconds, now))
        return Limit(name=row[0], slots=row[1], per_seconds=row[2])

    def list_limits(self, *, now: datetime, names: Sequence[str] | None = None) -> list[Limit]:
        wanted = None if names is None else list(names)
        found = self._db.fetchall(QUERIES["list_limits"], (now, wanted, wanted))
        return [Limit(name=r[0], slots=r[1], per_seconds=r[2], active=r[3]) for r in found]

    def delete_limit(self, name: str) -> bool:
        return self._db.execute(QUERIES["delete_limit"], (name, name)) > 0

    def acquire_limit_slot(
        self, name: str, holder: str, *, now: datetime, ttl_seconds: float
    ) -> bool:
        def acquire(conn: Connection) -> bool:
            with conn.transaction():
                limit = conn.execute(QUERIES["lock_limit"], (name,)).fetchone()
                if limit is None:
                    return False
                slots, per_seconds = limit
                conn.execute(QUERIES["drop_expired_slots"], (name, now))
                if conn.execute(QUERIES["holds_slot"], (name, holder)).fetchone() is not None:
                    return True
                taken = conn.execute(QUERIES["count_slots"], (name,)).fetchone()
                if taken is not None and taken[0] >= slots:
                    return False
                lasts = per_seconds if per_seconds is not None else ttl_seconds
                expires = now + timedelta(seconds=lasts)
                conn.execute(QUERIES["insert_slot"], (name, holder, now, expires))
                return True

        return self._db.run(acquire)

    def renew_limit_slots(
        self, holders: Sequence[str], *, now: datetime, ttl_seconds: float
    ) -> None:
        if holders:
            expires = now + timedelta(seconds=ttl_seconds)
            self._db.execute(QUERIES["renew_slots"], (expires, list(holders)))

    def release_limit_slots(self, holder: str) -> None:
        self._db.fetchone(QUERIES["release_slots"], (holder,))
