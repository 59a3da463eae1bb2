"""The notifications part of the store contract (mixed into `legato.store.base.Store`).

Channels are named records; deliveries form an outbox that senders work through.
A sender claims due deliveries under a lease (``owner`` until ``lease`` seconds
from now): a delivery is sent by one sender at a time, and a sender that dies
leaves it to another once the lease expires. Only the oldest open (pending or
sending) delivery of a channel can be claimed, so one channel's messages go out
in order even while an earlier one waits to retry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded when first used, not by `import legato`
    from legato._notification_records import Delivery, NotificationChannel


class NotificationOps(ABC):
    """Notification channel and outbox operations every backend provides."""

    # --- channels --------------------------------------------------------------------

    @abstractmethod
    def put_notification_channel(
        self,
        name: str,
        type: str,
        config: Mapping[str, Any],
        *,
        overwrite: bool,
        now: datetime,
    ) -> bool:
        """Store channel ``name``; False when it exists and ``overwrite`` is off."""

    @abstractmethod
    def get_notification_channel(self, name: str) -> NotificationChannel | None:
        """The channel named ``name``."""

    @abstractmethod
    def list_notification_channels(self) -> list[NotificationChannel]:
        """Every channel, by name."""

    @abstractmethod
    def delete_notification_channel(self, name: str) -> bool:
        """Delete channel ``name``; False when there was none."""

    # --- the outbox ------------------------------------------------------------------

    @abstractmethod
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
        """Add a pending delivery due ``now``; its id. A key enqueued before is kept as it
        is and its id returned (idempotent by key)."""

    @abstractmethod
    def get_delivery(self, delivery_id: int) -> Delivery | None:
        """The delivery with this id."""

    @abstractmethod
    def claim_due_deliveries(
        self, *, owner: str, now: datetime, lease_seconds: float, limit: int = 20
    ) -> list[Delivery]:
        """Claim (state sending, ``attempts`` + 1) at most ``limit`` due deliveries for
        ``owner`` until ``now + lease_seconds``: the oldest open delivery of each channel,
        when its ``next_attempt_at`` has come and no live lease holds it. Oldest due first."""

    @abstractmethod
    def mark_delivered(self, delivery_id: int, *, owner: str, now: datetime) -> bool:
        """The claimed delivery was sent; False when ``owner`` no longer holds it."""

    @abstractmethod
    def mark_retry(
        self, delivery_id: int, *, owner: str, next_attempt_at: datetime, error: str
    ) -> bool:
        """The attempt failed: pending again from ``next_attempt_at`` (its channel waits for
        it); False when ``owner`` no longer holds it."""

    @abstractmethod
    def mark_dead(self, delivery_id: int, *, owner: str, error: str) -> bool:
        """Give up on the claimed delivery (dead letter, keeping ``error``); False when
        ``owner`` no longer holds it."""

    @abstractmethod
    def list_deliveries(
        self, *, state: str | None = None, channel: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Deliveries newest first, optionally of one state and/or one channel."""
