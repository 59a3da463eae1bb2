"""Notification records: named channels and the deliveries of the outbox (`legato.notify`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DELIVERY_STATES = ("pending", "sending", "delivered", "dead")


@dataclass(frozen=True, slots=True)
class NotificationChannel:
    """A named place to send messages: ``type`` (slack, teams, discord, email, pagerduty,
    webhook, apprise) and its ``config`` (JSON; secrets are kept as the NAME of an
    environment variable, never as their value)."""

    name: str
    type: str
    config: Mapping[str, Any]
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message in the outbox, for one channel. ``state`` is pending (waiting for its
    ``next_attempt_at``), sending (claimed by a sender until its lease expires),
    delivered or dead (given up after the last attempt, ``last_error`` says why)."""

    id: int
    channel: str
    idempotency_key: str
    subject: str
    body: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    state: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    created: datetime | None = None
    delivered_at: datetime | None = None
    group_key: str | None = None
