"""Suspension requests on PostgreSQL (see `legato.store.base_suspend.SuspendOps`).
Mixed into `PostgresStore`."""

from __future__ import annotations

from legato.states import StateType
from legato.store.postgres import rows
from legato.store.postgres.connection import Database
from legato.store.postgres.sql import QUERIES


class PostgresSuspend:
    """The suspension part of the store contract."""

    _db: Database

    def request_pause(self, run_id: str) -> StateType | None:
        row = self._db.fetchone(QUERIES["request_pause"], (run_id, run_id))
        return None if row is None else rows.state_of(row[0])
