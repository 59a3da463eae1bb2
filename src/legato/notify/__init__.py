"""Notifications: named channels, a durable outbox, and the sender that empties it.

Messages are never sent from the process whose event they report: they are
enqueued (`enqueue_message`, idempotent by key) and sent by the scheduler
leader's sending duty or by `legato notify send-due`, with retries, backoff,
``Retry-After`` and a dead-letter state (see `legato.notify.sender`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from legato._notification_records import Delivery, NotificationChannel
from legato.errors import NotificationChannelNotFoundError
from legato.notify.channels import TYPES, check_channel, shown_config
from legato.notify.templates import DEFAULT_TEMPLATE, render_message
from legato.records import utcnow

if TYPE_CHECKING:
    from legato.store.base import Store

__all__ = [
    "DEFAULT_TEMPLATE",
    "TYPES",
    "Delivery",
    "NotificationChannel",
    "check_channel",
    "enqueue_message",
    "render_message",
    "shown_config",
]


def enqueue_message(
    store: Store,
    *,
    channel: str,
    subject: str,
    body: str,
    idempotency_key: str,
    payload: Mapping[str, Any] | None = None,
    group_key: str | None = None,
) -> int:
    """Put a message for ``channel`` in the outbox (once per ``idempotency_key``); its
    delivery id. Raises `NotificationChannelNotFoundError` for an unknown channel."""
    if store.get_notification_channel(channel) is None:
        raise NotificationChannelNotFoundError(channel)
    return store.enqueue_delivery(
        channel=channel,
        idempotency_key=idempotency_key,
        subject=subject,
        body=body,
        payload=dict(payload or {}),
        now=utcnow(),
        group_key=group_key,
    )
