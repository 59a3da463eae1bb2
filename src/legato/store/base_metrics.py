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
from dataclasses import dataclass
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


# --- Prometheus metrics (issue 14): aggregates the run table's triggers keep ---------

#: The upper bounds of the duration and lateness histogram buckets, in seconds, as the
#: triggers of migration 0023 (SQLite) / 0022 (PostgreSQL) assign them (+Inf is -1 there).
HISTOGRAM_BOUNDS: tuple[float, ...] = (
    0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400
)  # fmt: skip


#: How many new events one `PrometheusMetricOps.metric_event_counts` call counts at most.
EVENT_COUNT_BATCH = 100_000


@dataclass(frozen=True)
class FlowRunCountRow:
    """Flow runs of one flow, deployment, queue and state ('' for none): how many ever
    entered the state (``entered``), and how many are in it now (``current``)."""

    flow: str
    deployment: str
    work_queue: str
    state: str
    entered: int
    current: int


@dataclass(frozen=True)
class TaskRunCountRow:
    """Task runs of one task (its name, not its call key) in flows of one name, counted
    in the state they ended in when their flow run ended; ``cached`` of them came from
    the cache."""

    flow: str
    task: str
    state: str
    n: int
    cached: int


@dataclass(frozen=True)
class HistogramRow:
    """One histogram bucket: ``metric`` is 'duration' (a = flow, b = deployment),
    'lateness' (a = deployment, b = work queue) or 'task_duration' (a = flow, b = task);
    ``n`` values fell at or under ``le`` and over the bound below it (``le`` is
    ``math.inf`` for the last); ``total`` sums them."""

    metric: str
    a: str
    b: str
    le: float
    n: int
    total: float


class PrometheusMetricOps(ABC):
    """What the ``/metrics`` collector reads: a few rows whatever the number of runs."""

    @abstractmethod
    def metric_run_counts(self) -> list[FlowRunCountRow]:
        """The flow run counts per flow, deployment, queue and state."""

    @abstractmethod
    def metric_histograms(self) -> list[HistogramRow]:
        """The buckets of the flow run duration, start lateness and task run duration
        histograms."""

    @abstractmethod
    def metric_task_counts(self) -> list[TaskRunCountRow]:
        """The task run counts per flow, task name and state (none at zero)."""

    @abstractmethod
    def metric_queue_oldest(self) -> dict[str, datetime]:
        """The scheduled time of the oldest run waiting in each work queue."""

    @abstractmethod
    def metric_task_replays(self) -> dict[str, int]:
        """Task calls answered from the journal instead of run, per flow name: the sum
        of the ``replayed`` counts the attempt ends passed (none at zero)."""

    @abstractmethod
    def metric_event_counts(self, *, batch: int = EVENT_COUNT_BATCH) -> dict[str, int]:
        """The events recorded per name, ever. First counts the events recorded since
        the previous call (at most ``batch`` of them; the rest at the next call) into
        totals kept in the store, so a call costs the new events only, a restart keeps
        the totals, and events pruned later stay counted."""
