"""The metric part of the store contract (mixed into `legato.store.base.Store`).

What metric triggers (`legato.automations.metrics`) read: the flow runs that
finished, or started, since a time. Both walk the events index (``events
(event, seq)``, found from ``events (received)``), which the run tables' own
triggers write in the transaction of each state change, so a step costs the runs
of its window, never a scan of every run. Queue depth and the lateness of runs
still waiting read ``list_late_runs`` (the partial index of scheduled runs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.records import FlowRun

#: How far before ``since`` the events index is entered: an event's ``received``
#: and its ``seq`` may disagree by the length of the transaction that wrote it
#: (PostgreSQL), so the walk starts this much earlier and the runs are then
#: filtered by their own times.
INDEX_MARGIN = timedelta(seconds=60)


class MetricOps(ABC):
    """Operations of metric triggers."""

    @abstractmethod
    def list_finished_runs(self, *, since: datetime, limit: int = 5000) -> list[FlowRun]:
        """Flow runs now in a final state (completed, failed, crashed, cancelled) whose
        ``end_time`` is at or after ``since``, latest end first, at most ``limit``."""

    @abstractmethod
    def list_started_runs(self, *, since: datetime, limit: int = 5000) -> list[FlowRun]:
        """Flow runs with a ``scheduled_time`` whose ``start_time`` is at or after
        ``since`` (whatever their state now), latest start first, at most ``limit``."""
