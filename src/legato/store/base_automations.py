"""The automations part of the store contract (mixed into `legato.store.base.Store`).

The evaluator's exactly-once rule lives in `commit_evaluation`: bucket changes,
firings and their action rows are written in the transaction that moves the
evaluator's cursor, and only if the cursor is still where the evaluator read it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded when first used, not by `import legato`
    from legato._automation_records import (
        ActionRow,
        Bucket,
        Evaluation,
        Firing,
        StoredAutomation,
    )

# The backends' shared row mapping: times are epoch seconds, JSON is text.


def epoch(value: datetime) -> float:
    return value.timestamp()


def from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def automation_from_row(row: Sequence[Any]) -> StoredAutomation:
    from legato._automation_records import StoredAutomation

    return StoredAutomation(
        id=row[0],
        name=row[1],
        enabled=bool(row[2]),
        spec=row[3],
        created=from_epoch(row[4]),
        updated=from_epoch(row[5]),
    )


def bucket_from_row(row: Sequence[Any]) -> Bucket:
    from legato._automation_records import Bucket

    return Bucket(
        automation_id=row[0],
        key=row[1],
        opened_at=from_epoch(row[2]),
        count=int(row[3]),
        event_ids=tuple(json.loads(row[4])),
        expires_at=None if row[5] is None else from_epoch(row[5]),
    )


def firing_from_row(row: Sequence[Any], actions: Sequence[Sequence[Any]]) -> Firing:
    """A Firing from its row and the rows of its actions."""
    from legato._automation_records import Firing

    return Firing(
        id=row[0],
        automation_id=row[1],
        fired_at=from_epoch(row[2]),
        bucket_key=row[3],
        event_ids=tuple(json.loads(row[4])),
        reason=row[5],
        actions=tuple(action_from_row(a) for a in actions),
    )


def action_from_row(row: Sequence[Any]) -> ActionRow:
    from legato._automation_records import ActionRow

    return ActionRow(
        firing_id=row[0],
        index=int(row[1]),
        spec=row[2],
        state=row[3],
        attempts=int(row[4]),
        next_attempt_at=from_epoch(row[5]),
        result=row[6],
        automation_id=row[7],
    )


def bucket_params(bucket: Bucket) -> tuple[Any, ...]:
    expires = None if bucket.expires_at is None else epoch(bucket.expires_at)
    return (
        bucket.automation_id,
        bucket.key,
        epoch(bucket.opened_at),
        bucket.count,
        json.dumps(list(bucket.event_ids)),
        expires,
    )


def firing_params(firing: Firing) -> tuple[Any, ...]:
    return (
        firing.id,
        firing.automation_id,
        epoch(firing.fired_at),
        firing.bucket_key,
        json.dumps(list(firing.event_ids)),
        firing.reason,
    )


def action_params(firing: Firing) -> list[tuple[Any, ...]]:
    return [
        (
            a.firing_id,
            a.index,
            a.idempotency_key,
            firing.automation_id,
            a.spec,
            epoch(a.next_attempt_at or firing.fired_at),
        )
        for a in firing.actions
    ]


class AutomationOps(ABC):
    """Automation operations every backend provides."""

    @abstractmethod
    def save_automation(
        self, automation_id: str, name: str, spec: str, *, enabled: bool, now: datetime
    ) -> StoredAutomation:
        """Create the automation, or replace the spec and switch of the one with this
        name (which keeps its id and creation time). Returns it as stored."""

    @abstractmethod
    def get_automation(self, name: str) -> StoredAutomation | None:
        """The automation called ``name``."""

    @abstractmethod
    def list_automations(self) -> list[StoredAutomation]:
        """Every automation, by name."""

    @abstractmethod
    def automations_version(self) -> str:
        """A token that changes whenever an automation is created, changed, paused,
        resumed or deleted: the evaluator re-reads them (`list_automations`) only then."""

    @abstractmethod
    def set_automation_enabled(self, name: str, enabled: bool, *, now: datetime) -> bool:
        """Enable or disable; True when it exists."""

    @abstractmethod
    def delete_automation(self, name: str) -> bool:
        """Remove the automation with its buckets, firings and action rows."""

    @abstractmethod
    def get_evaluator_cursor(self, name: str) -> str | None:
        """The event cursor evaluator ``name`` committed last (None: never ran)."""

    @abstractmethod
    def load_buckets(self, keys: Sequence[tuple[str, str]]) -> list[Bucket]:
        """The stored buckets among (automation_id, key) pairs."""

    @abstractmethod
    def list_buckets(self, automation_id: str, *, limit: int = 100) -> list[Bucket]:
        """An automation's open buckets, oldest first."""

    @abstractmethod
    def expired_buckets(self, now: datetime, *, limit: int = 1000) -> list[Bucket]:
        """Buckets whose window ended at or before ``now``, earliest first."""

    @abstractmethod
    def commit_evaluation(
        self, name: str, expected: str | None, cursor: str, evaluation: Evaluation
    ) -> bool:
        """In one transaction: move evaluator ``name``'s cursor from ``expected`` to
        ``cursor``, write ``evaluation``'s bucket upserts and deletes, its firings
        and their action rows. When the stored cursor is not ``expected`` (another
        evaluator moved it) nothing is written and the answer is False."""

    @abstractmethod
    def list_firings(self, automation_id: str, *, limit: int = 20) -> list[Firing]:
        """An automation's firings, newest first, each with its action rows."""

    @abstractmethod
    def count_firings(self, automation_id: str) -> int:
        """How many firings an automation has."""

    @abstractmethod
    def due_actions(self, now: datetime, *, limit: int = 100) -> list[ActionRow]:
        """Pending action rows due at or before ``now``, oldest firing first."""

    @abstractmethod
    def finish_action(
        self,
        firing_id: str,
        index: int,
        *,
        state: str,
        attempts: int,
        result: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        """Record an attempt of an action row: its new state (pending with a later
        ``next_attempt_at`` to retry, done or failed), attempts and result/error."""
