"""Notification channels and the delivery outbox on PostgreSQL (see
`legato.store.base_notifications.NotificationOps`).

Mixed into `PostgresStore`. Claims take turns under a transaction-level
advisory lock, so each claimer sees the previous one's claims: no delivery is
claimed twice and a channel never has two in flight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from legato._notification_records import Delivery, NotificationChannel
from legato.store.postgres.connection import Connection, Database
from legato.store.postgres.rows import to_jsonb
from legato.store.postgres.sql import QUERIES


def _channel(row: Sequence[Any]) -> NotificationChannel:
    return NotificationChannel(
        name=row[0], type=row[1], config=row[2], created=row[3], updated=row[4]
    )


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=int(row[0]),
        channel=row[1],
        idempotency_key=row[2],
        subject=row[3],
        body=row[4],
        payload=row[5],
        state=row[6],
        attempts=int(row[7]),
        next_attempt_at=row[8],
        last_error=row[9],
        created=row[10],
        delivered_at=row[11],
        group_key=row[12],
    )


class PostgresNotifications:
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
        query = QUERIES[
            "upsert_notification_channel" if overwrite else "insert_notification_channel"
        ]
        params = (name, type, to_jsonb(dict(config), "the channel's config"), now, now)
        if self._db.fetchone(query, params) is not None:
            return True
        if self._db.retried:  # our insert may have committed before its reply was lost
            stored = self.get_notification_channel(name)
            return stored is not None and stored.created == now
        return False

    def get_notification_channel(self, name: str) -> NotificationChannel | None:
        row = self._db.fetchone(QUERIES["get_notification_channel"], (name,))
        return None if row is None else _channel(row)

    def list_notification_channels(self) -> list[NotificationChannel]:
        return [_channel(r) for r in self._db.fetchall(QUERIES["list_notification_channels"], ())]

    def delete_notification_channel(self, name: str) -> bool:
        return self._db.execute(QUERIES["delete_notification_channel"], (name,)) > 0

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
        params = (
            channel,
            idempotency_key,
            subject,
            body,
            to_jsonb(dict(payload), "the delivery's payload"),
            now,
            now,
            group_key,
        )
        row = self._db.fetchone(QUERIES["insert_delivery"], params)
        if row is None:
            row = self._db.fetchone(QUERIES["delivery_id_by_key"], (idempotency_key,))
        return int(row[0])

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        row = self._db.fetchone(QUERIES["get_delivery"], (delivery_id,))
        return None if row is None else _delivery(row)

    def claim_due_deliveries(
        self, *, owner: str, now: datetime, lease_seconds: float, limit: int = 20
    ) -> list[Delivery]:
        params = (owner, now + timedelta(seconds=lease_seconds), now, now, limit)

        def claim(conn: Connection) -> list[Any]:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute(QUERIES["lock_delivery_claims"], ())
                return cursor.execute(QUERIES["claim_due_deliveries"], params).fetchall()

        claimed = [_delivery(row) for row in self._db.run(claim)]
        claimed.sort(key=lambda d: (d.next_attempt_at, d.id))
        return claimed

    def mark_delivered(self, delivery_id: int, *, owner: str, now: datetime) -> bool:
        return self._db.execute(QUERIES["mark_delivery_delivered"], (now, delivery_id, owner)) > 0

    def mark_retry(
        self, delivery_id: int, *, owner: str, next_attempt_at: datetime, error: str
    ) -> bool:
        params = (next_attempt_at, error, delivery_id, owner)
        return self._db.execute(QUERIES["mark_delivery_retry"], params) > 0

    def mark_dead(self, delivery_id: int, *, owner: str, error: str) -> bool:
        return self._db.execute(QUERIES["mark_delivery_dead"], (error, delivery_id, owner)) > 0

    def list_deliveries(
        self, *, state: str | None = None, channel: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        conditions: list[str] = []
        params: list[Any] = []
        if state is not None:
            conditions.append("state = %s")
            params.append(state)
        if channel is not None:
            conditions.append("channel = %s")
            params.append(channel)
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        sql = QUERIES["list_deliveries"].replace("{where}", where)
        return [_delivery(row) for row in self._db.fetchall(sql, (*params, limit))]
