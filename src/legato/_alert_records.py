"""Alert state records: what the alert rules keep between firings (`legato.alerts`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AlertState:
    """The state one alert keeps under ``key`` (a group key, or ``#rate:<channel>`` for a
    channel's rate limit): ``data`` is JSON; ``expires_at`` is when the leader must look
    at it again (a group window ends, a held-back message may go out); None: never."""

    alert: str
    key: str
    data: Mapping[str, Any]
    expires_at: datetime | None
    updated: datetime
