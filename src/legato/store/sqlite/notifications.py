"""Notification channels and the delivery outbox on SQLite (see
`legato.store.base_notifications.NotificationOps`).

Mixed into `SQLiteStore`. One writer at a time: a claim is one statement in a
write transaction, so two senders never claim the same delivery.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from legato._notification_records import Delivery, NotificationChannel
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


def _channel(row: Sequence[Any]) -> NotificationChannel:
    return NotificationChannel(
        name=row[0],
        type=row[1],
        config=json.loads(row[2]),
        created=datetime.fromtimestamp(row[3], UTC),
        updated=datetime.fromtimestamp(row[4], UTC),
    )


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=int(row[0]),
        channel=row[1],
        idempotency_key=row[2],
        subject=row[3],
        body=row[4],
        payload=json.loads(row[5]),
        state=row[6],
        attempts=int(row[7]),
        next_attempt_at=rows.from_epoch(row[8]),
        last_error=row[9],
        created=rows.from_epoch(row[10]),
        delivered_at=rows.from_epoch(row[11]),
        group_key=row[12],
    )


class SQLiteNotifications:
    """The notifications part of the store contract."""

    _db: Database

    def put_notification_channel(
        self,
        name: str,
        type: str,
        config: Mapping[str, Any],
        *,
        overwrite: bool,
        now: datetime,
    ) -> bool:
        at = rows.epoch(now)
        params = (name, type, rows.to_json(dict(config), "the channel's config"), at, at)
        query = QUERIES[
            "upsert_notification_channel" if overwrite else "insert_notification_channel"
        ]
        return self._db.write(lambda conn: conn.execute(query, params).fetchone()) is not None

    def get_notification_channel(self, name: str) -> NotificationChannel | None:
        row = self._db.fetchone(QUERIES["get_notification_channel"], (name,))
        return None if row is None else _channel(row)

    def list_notification_channels(self) -> list[NotificationChannel]:
        return [_channel(r) for r in self._db.fetchall(QUERIES["list_notification_channels"], ())]

    def delete_notification_channel(self, name: str) -> bool:
        return self._db.write_one(QUERIES["delete_notification_channel"], (name,)) > 0

    def enqueue_delivery(
        self,
        *,
        channel: str,
        idempotency_key: str,
        subject: str,
        body: str,
        payload: Mapping[str, Any],
        now: datetime,
        group_key: str | None = None,
    ) -> int:
        at = rows.epoch(now)
        params = (
            channel,
            idempotency_key,
            subject,
            body,
            rows.to_json(dict(payload), "the delivery's payload"),
            at,
            at,
            group_key,
        )

        def insert(conn: sqlite3.Connection) -> int:
            row = conn.execute(QUERIES["insert_delivery"], params).fetchone()
            if row is None:
                row = conn.execute(QUERIES["delivery_id_by_key"], (idempotency_key,)).fetchone()
            return int(row[0])

        return self._db.write(insert)

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        row = self._db.fetchone(QUERIES["get_delivery"], (delivery_id,))
        return None if row is None else _delivery(row)

    def claim_due_deliveries(
        self, *, owner: str, now: datetime, lease_seconds: float, limit: int = 20
    ) -> list[Delivery]:
        at = rows.epoch(now)
        params = (owner, at + lease_seconds, at, at, limit)
        found = self._db.write(
            lambda conn: conn.execute(QUERIES["claim_due_deliveries"], params).fetchall()
        )
        claimed = [_delivery(row) for row in found]
        claimed.sort(key=lambda d: (d.next_attempt_at, d.id))
        return claimed

    def mark_delivered(self, delivery_id: int, *, owner: str, now: datetime) -> bool:
        params = (rows.epoch(now), delivery_id, owner)
        return self._db.write_one(QUERIES["mark_delivery_delivered"], params) > 0

    def mark_retry(
        self, delivery_id: int, *, owner: str, next_attempt_at: datetime, error: str
    ) -> bool:
        params = (rows.epoch(next_attempt_at), error, delivery_id, owner)
        return self._db.write_one(QUERIES["mark_delivery_retry"], params) > 0

    def mark_dead(self, delivery_id: int, *, owner: str, error: str) -> bool:
        return self._db.write_one(QUERIES["mark_delivery_dead"], (error, delivery_id, owner)) > 0

    def list_deliveries(
        self, *, state: str | None = None, channel: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        conditions: list[str] = []
        params: list[Any] = []
        if state is not None:
            conditions.append("state = ?")
            params.append(state)
        if channel is not None:
            conditions.append("channel = ?")
            params.append(channel)
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        sql = QUERIES["list_deliveries"].replace("{where}", where)
        return [_delivery(row) for row in self._db.fetchall(sql, (*params, limit))]
