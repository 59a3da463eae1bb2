"""The webhooks part of the store contract (mixed into `legato.store.base.Store`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded when first used, not by `import legato`
    from legato._webhook_records import Webhook


class WebhookOps(ABC):
    """Stored webhook definitions, keyed by slug."""

    @abstractmethod
    def put_webhook(self, webhook: Webhook, *, overwrite: bool, now: datetime) -> bool:
        """Store ``webhook`` (its ``created``/``updated`` are set to ``now``; an
        overwritten one keeps its ``created``). False when the slug is taken and
        ``overwrite`` is False (nothing changes)."""

    @abstractmethod
    def get_webhook(self, slug: str) -> Webhook | None:
        """The webhook with this slug."""

    @abstractmethod
    def list_webhooks(self) -> list[Webhook]:
        """Every webhook, by slug."""

    @abstractmethod
    def set_webhook_enabled(self, slug: str, enabled: bool, *, now: datetime) -> bool:
        """Enable or disable a webhook; False when there is no such slug."""

    @abstractmethod
    def delete_webhook(self, slug: str) -> bool:
        """Delete a webhook; False when there was none."""
