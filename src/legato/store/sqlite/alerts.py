"""Alert states on SQLite (see `legato.store.base_alerts.AlertOps`). Mixed into `SQLiteStore`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from legato._alert_records import AlertState
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


def _state(row: Sequence[Any]) -> AlertState:
    return AlertState(
        alert=row[0],
        key=row[1],
        data=json.loads(row[2]),
        expires_at=rows.from_epoch(row[3]),
        updated=datetime.fromtimestamp(row[4], UTC),
    )


class SQLiteAlerts:
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
        params = (
            alert,
            key,
            rows.to_json(dict(data), "an alert state"),
            rows.to_epoch(expires_at),
            rows.epoch(now),
        )
        self._db.write_one(QUERIES["put_alert_state"], params)

    def get_alert_state(self, alert: str, key: str) -> AlertState | None:
        row = self._db.fetchone(QUERIES["get_alert_state"], (alert, key))
        return None if row is None else _state(row)

    def list_alert_states(self, alert: str) -> list[AlertState]:
        return [_state(r) for r in self._db.fetchall(QUERIES["list_alert_states"], (alert,))]

    def due_alert_states(self, now: datetime, *, limit: int = 100) -> list[AlertState]:
        found = self._db.fetchall(QUERIES["due_alert_states"], (rows.epoch(now), limit))
        return [_state(r) for r in found]

    def delete_alert_state(self, alert: str, key: str) -> bool:
        return self._db.write_one(QUERIES["delete_alert_state"], (alert, key)) > 0

    def delete_alert_states(self, alert: str) -> int:
        return self._db.write_one(QUERIES["delete_alert_states"], (alert,))
