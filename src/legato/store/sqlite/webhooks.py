"""Webhooks on SQLite: stored mappings from HTTP requests to events.

Mixed into `SQLiteStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from legato._webhook_records import Webhook
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


def _webhook(row: Sequence[Any]) -> Webhook:
    return Webhook(
        slug=row[0],
        description=row[1],
        template=row[2],
        auth=row[3],
        secret_env=row[4],
        secret=row[5],
        enabled=bool(row[6]),
        created=datetime.fromtimestamp(row[7], UTC),
        updated=datetime.fromtimestamp(row[8], UTC),
    )


class SQLiteWebhooks:
    """The webhooks part of the store contract (see `legato.store.base_webhooks`)."""

    _db: Database

    def put_webhook(self, webhook: Webhook, *, overwrite: bool, now: datetime) -> bool:
        at = rows.epoch(now)
        params = (
            webhook.slug,
            webhook.description,
            webhook.template,
            webhook.auth,
            webhook.secret_env,
            webhook.secret,
            int(webhook.enabled),
            at,
            at,
        )
        query = QUERIES["upsert_webhook" if overwrite else "insert_webhook"]
        row = self._db.write(lambda conn: conn.execute(query, params).fetchone())
        return row is not None

    def get_webhook(self, slug: str) -> Webhook | None:
        row = self._db.fetchone(QUERIES["get_webhook"], (slug,))
        return None if row is None else _webhook(row)

    def list_webhooks(self) -> list[Webhook]:
        return [_webhook(row) for row in self._db.fetchall(QUERIES["list_webhooks"], ())]

    def set_webhook_enabled(self, slug: str, enabled: bool, *, now: datetime) -> bool:
        params = (int(enabled), rows.epoch(now), slug)
        return self._db.write_one(QUERIES["set_webhook_enabled"], params) > 0

    def delete_webhook(self, slug: str) -> bool:
        return self._db.write_one(QUERIES["delete_webhook"], (slug,)) > 0
