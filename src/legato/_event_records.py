"""The event record: something that happened, about a resource (`legato.events`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RESOURCE_ID = "legato.resource.id"
RESOURCE_ROLE = "legato.resource.role"
RESOURCE_NAME = "legato.resource.name"


@dataclass(frozen=True, slots=True)
class Event:
    """One event. ``resource`` is a label object naming what it is about (its
    ``legato.resource.id`` label is required); ``related`` names other resources, each
    with a ``legato.resource.role``; ``payload`` is any JSON object. ``seq`` (the store's
    order) and ``received`` are set by the store."""

    id: str
    event: str
    occurred: datetime
    resource: Mapping[str, str]
    related: tuple[Mapping[str, str], ...] = ()
    payload: Mapping[str, Any] = field(default_factory=dict)
    follows: str | None = None
    received: datetime | None = None
    seq: int | None = None

    @property
    def resource_id(self) -> str:
        return self.resource[RESOURCE_ID]

    def related_ids(self, role: str | None = None) -> list[str]:
        """The ids of the related resources (with ``role``, only those in that role)."""
        return [
            r[RESOURCE_ID]
            for r in self.related
            if RESOURCE_ID in r and (role is None or r.get(RESOURCE_ROLE) == role)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data (Prefect's field names)."""
        return {
            "id": self.id,
            "event": self.event,
            "occurred": self.occurred.isoformat(),
            "received": self.received.isoformat() if self.received else None,
            "seq": self.seq,
            "resource": dict(self.resource),
            "related": [dict(r) for r in self.related],
            "payload": dict(self.payload),
            "follows": self.follows,
        }


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events read in store order after a cursor, and the cursor after the last of
    them (the same cursor when none was read). Cursors are opaque strings."""

    events: list[Event]
    cursor: str
