"""Stored automation records: the rows the automation evaluator reads and writes.

Plain dataclasses so the store need not know the automation model (pydantic,
`legato.automations.model`): a spec travels as JSON text. Times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StoredAutomation:
    id: str
    name: str
    enabled: bool
    spec: str  # JSON of the automation model
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class Bucket:
    """A trigger's state for one ``for_each`` key: opened when, how many events
    counted since, which (the first few), and when its window ends (None: never)."""

    automation_id: str
    key: str
    opened_at: datetime
    count: int
    event_ids: tuple[str, ...] = ()
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One action of a firing. ``idempotency_key`` is ``firing_id:index``."""

    firing_id: str
    index: int
    spec: str  # JSON of the action model
    state: str = "pending"  # pending | done | failed
    attempts: int = 0
    next_attempt_at: datetime | None = None
    result: str | None = None
    automation_id: str = ""

    @property
    def idempotency_key(self) -> str:
        return f"{self.firing_id}:{self.index}"


@dataclass(frozen=True, slots=True)
class Firing:
    id: str
    automation_id: str
    fired_at: datetime
    bucket_key: str
    event_ids: tuple[str, ...]
    reason: str
    actions: tuple[ActionRow, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation step writes, in one transaction with its cursor move."""

    upserts: tuple[Bucket, ...] = ()
    deletes: tuple[tuple[str, str], ...] = ()  # (automation_id, bucket key)
    firings: tuple[Firing, ...] = ()
