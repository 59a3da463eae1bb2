"""Suspension requests on SQLite (see `legato.store.base_suspend.SuspendOps`). Mixed
into `SQLiteStore`."""

from __future__ import annotations

import sqlite3

from legato.states import StateType
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


class SQLiteSuspend:
    """The suspension part of the store contract."""

    _db: Database

    def request_pause(self, run_id: str) -> StateType | None:
        def flag(conn: sqlite3.Connection) -> StateType | None:
            conn.execute(QUERIES["request_pause"], (run_id,))
            row = conn.execute(QUERIES["get_run_state"], (run_id,)).fetchone()
            return None if row is None else rows.state_of(row[0])

        return self._db.write(flag)
