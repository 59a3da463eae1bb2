"""Webhooks on PostgreSQL: stored mappings from HTTP requests to events.

Mixed into `PostgresStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from legato._webhook_records import Webhook
from legato.store.postgres.connection import Database
from legato.store.postgres.sql import QUERIES


def _webhook(row: Sequence[Any]) -> Webhook:
    return Webhook(
        slug=row[0],
        description=row[1],
        template=row[2],
        auth=row[3],
        secret_env=row[4],
        secret=row[5],
        enabled=row[6],
        created=row[7],
        updated=row[8],
    )


class PostgresWebhooks:
    """The webhooks part of the store contract (see `legato.store.base_webhooks`)."""

    _db: Database

    def put_webhook(self, webhook: Webhook, *, overwrite: bool, now: datetime) -> bool:
        params = (
            webhook.slug,
            webhook.description,
            webhook.template,
            webhook.auth,
            webhook.secret_env,
            webhook.secret,
            webhook.enabled,
            now,
            now,
        )
        query = QUERIES["upsert_webhook" if overwrite else "insert_webhook"]
        if self._db.fetchone(query, params) is not None:
            return True
        if self._db.retried:  # our insert may have committed before its reply was lost
            stored = self.get_webhook(webhook.slug)
            return stored is not None and stored.created == now
        return False

    def get_webhook(self, slug: str) -> Webhook | None:
        row = self._db.fetchone(QUERIES["get_webhook"], (slug,))
        return None if row is None else _webhook(row)

    def list_webhooks(self) -> list[Webhook]:
        return [_webhook(row) for row in self._db.fetchall(QUERIES["list_webhooks"], ())]

    def set_webhook_enabled(self, slug: str, enabled: bool, *, now: datetime) -> bool:
        return self._db.execute(QUERIES["set_webhook_enabled"], (enabled, now, slug)) > 0

    def delete_webhook(self, slug: str) -> bool:
        return self._db.execute(QUERIES["delete_webhook"], (slug,)) > 0
