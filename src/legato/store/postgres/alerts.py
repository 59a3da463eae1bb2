"""Alert states on PostgreSQL (see `legato.store.base_alerts.AlertOps`). Mixed into
`PostgresStore`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from legato._alert_records import AlertState
from legato.store.postgres.connection import Database
from legato.store.postgres.rows import to_jsonb
from legato.store.postgres.sql import QUERIES


def _state(row: Sequence[Any]) -> AlertState:
    return AlertState(alert=row[0], key=row[1], data=row[2], expires_at=row[3], updated=row[4])


class PostgresAlerts:
    """The alerts part of the store contract."""

    _db: Database

    def put_alert_state(
        self,
        alert: str,
        key: str,
        data: Mapping[str, Any],
        *,
        expires_at: datetime | None,
        now: datetime,
    ) -> None:
        params = (alert, key, to_jsonb(dict(data), "an alert state"), expires_at, now)
        self._db.execute(QUERIES["put_alert_state"], params)

    def get_alert_state(self, alert: str, key: str) -> AlertState | None:
        row = self._db.fetchone(QUERIES["get_alert_state"], (alert, key))
        return None if row is None else _state(row)

    def list_alert_states(self, alert: str) -> list[AlertState]:
        return [_state(r) for r in self._db.fetchall(QUERIES["list_alert_states"], (alert,))]

    def due_alert_states(self, now: datetime, *, limit: int = 100) -> list[AlertState]:
        return [_state(r) for r in self._db.fetchall(QUERIES["due_alert_states"], (now, limit))]

    def delete_alert_state(self, alert: str, key: str) -> bool:
        return self._db.execute(QUERIES["delete_alert_state"], (alert, key)) > 0

    def delete_alert_states(self, alert: str) -> int:
        return self._db.execute(QUERIES["delete_alert_states"], (alert,))
