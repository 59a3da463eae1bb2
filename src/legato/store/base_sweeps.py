"""The sweeps part of the store contract (mixed into `legato.store.base.Store`).

What the leader's sweeps (`legato.worker.sweeps`) read and write: scheduled runs
past due, and the deadlines of runs (`legato.Deadline`), whose firing marks the
deadline and stores its event in one transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato._event_records import Event
    from legato.deadlines import RunDeadline
    from legato.records import FlowRun


class SweepOps(ABC):
    """Operations of the leader's sweeps."""

    @abstractmethod
    def list_late_runs(
        self, *, due_before: datetime, due_after: datetime | None = None, limit: int = 500
    ) -> list[FlowRun]:
        """SCHEDULED runs whose ``scheduled_time`` is at or before ``due_before`` (and
        at or after ``due_after``), earliest first, at most ``limit`` (an index walk)."""

    @abstractmethod
    def add_run_deadlines(self, deadlines: Sequence[RunDeadline]) -> None:
        """Store deadlines of runs (a (run, index) stored before is kept as it is).
        A "started" deadline stored without ``due_at`` is armed when its run starts;
        an unfired one is disarmed when its run ends."""

    @abstractmethod
    def list_run_deadlines(self, run_id: str) -> list[RunDeadline]:
        """The deadlines of one run, by index."""

    @abstractmethod
    def due_deadlines(self, *, now: datetime, limit: int = 500) -> list[RunDeadline]:
        """Unfired deadlines due at or before ``now`` of runs that exist and are not
        final, earliest first (an index walk)."""

    @abstractmethod
    def fire_deadline(self, run_id: str, index: int, *, now: datetime, event: Event) -> bool:
        """In one transaction: mark the deadline fired (only if it is still unfired,
        armed and its run not final: compare-and-set), store ``event`` and, for a
        "cancel" deadline, ask the run to cancel as `request_cancellation` does.
        True when this call fired it; False when it was fired already (by another
        sweeper), or the run ended or was deleted meanwhile."""
