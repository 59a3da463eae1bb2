"""The alerts part of the store contract (mixed into `legato.store.base.Store`).

Alert rules (`legato.alerts`) keep small JSON states by (alert, key): a group's
window, count and held-back messages. Only the scheduler leader writes them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded when first used, not by `import legato`
    from legato._alert_records import AlertState


class AlertOps(ABC):
    """Alert state operations every backend provides."""

    @abstractmethod
    def put_alert_state(
        self,
        alert: str,
        key: str,
        data: Mapping[str, Any],
        *,
        expires_at: datetime | None,
        now: datetime,
    ) -> None:
        """Create or replace the state of ``alert`` under ``key``."""

    @abstractmethod
    def get_alert_state(self, alert: str, key: str) -> AlertState | None:
        """The state of ``alert`` under ``key``."""

    @abstractmethod
    def list_alert_states(self, alert: str) -> list[AlertState]:
        """Every state of ``alert``, by key."""

    @abstractmethod
    def due_alert_states(self, now: datetime, *, limit: int = 100) -> list[AlertState]:
        """States whose ``expires_at`` is at or before ``now``, earliest first."""

    @abstractmethod
    def delete_alert_state(self, alert: str, key: str) -> bool:
        """Delete one state; False when there was none."""

    @abstractmethod
    def delete_alert_states(self, alert: str) -> int:
        """Delete every state of ``alert``; how many."""
