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
from dataclasses import dataclass, field
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


# --- Prometheus metrics (issue 14): aggregates folded from the events index -----------

#: The upper bounds of the duration and lateness histogram buckets, in seconds, as the
#: fold (`bucket`) and the lateness trigger of migration 0023 (SQLite) / 0022
#: (PostgreSQL) assign them (+Inf is -1 there).
HISTOGRAM_BOUNDS: tuple[float, ...] = (
    0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400
)  # fmt: skip


#: How many new events one `PrometheusMetricOps.metric_event_counts` call counts at most.
EVENT_COUNT_BATCH = 100_000

#: How many events one `PrometheusMetricOps.fold_run_metrics` call reads at most.
FOLD_BATCH = 100_000


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
    def fold_run_metrics(self, *, batch: int = FOLD_BATCH) -> int:
        """Fold the flow run state events recorded since the metrics watermark (at most
        ``batch`` of them; the rest at the next call) into the flow run counts, the
        duration, lateness and task duration histograms and the task run counts (see
        `fold_run_events`); returns how far the watermark moved (0: nothing new). The
        three reads below fold first, so they are current when they return."""

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


# --- The fold: flow run metrics counted from the events index at scrape time ----------
#
# Every flow run state change writes an event in its own transaction (from, to,
# attempt; the flow, deployment and queue as related resources). The metric reads
# first fold the events written since the metrics watermark into the aggregate tables
# (at most FOLD_BATCH of them per call, the rest at the next), so a run's own writes
# pay nothing for metrics.


_FINAL_NAMES = frozenset({"completed", "failed", "crashed", "cancelled"})


def bucket(value: float) -> float:
    """The histogram bucket (upper bound, -1 for +Inf) a value falls in."""
    for bound in HISTOGRAM_BOUNDS:
        if value <= bound:
            return float(bound)
    return -1.0


@dataclass(frozen=True)
class RunEvent:
    """One flow run state event, with what the fold needs of its run: its flow,
    deployment and queue ('' for none) from its row, or ``flow`` None and the event's
    related resources once the run was deleted; ``duration`` is its end minus start,
    in seconds, when the row has both."""

    run_id: str
    from_state: str | None
    to_state: str
    flow: str | None
    deployment: str
    work_queue: str
    related: list[dict[str, str]] | None
    duration: float | None


@dataclass
class Fold:
    """What a batch of events adds: count deltas per (flow, deployment, queue, state) as
    [entered, current], histogram deltas per (metric, a, b, le) as [n, total], and the
    runs whose attempt ended (their task runs to count), with their flow name."""

    counts: dict[tuple[str, str, str, str], list[int]]
    histograms: dict[tuple[str, str, str, float], list[float]]
    ended: dict[str, str]
    tasks: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)

    def observe(self, metric: str, a: str, b: str, value: float) -> None:
        cell = self.histograms.setdefault((metric, a, b, bucket(value)), [0, 0.0])
        cell[0] += 1
        cell[1] += value

    def count_task(
        self, flow: str, task: str, state: str, cached: bool, duration: float | None
    ) -> None:
        """One task run record of a run of ``flow`` that reached final ``state``."""
        cell = self.tasks.setdefault((flow, task, state), [0, 0])
        cell[0] += 1
        cell[1] += int(bool(cached))
        if duration is not None:
            self.observe("task_duration", flow, task, max(duration, 0.0))


def _names(related: list[dict[str, str]]) -> dict[str, str]:
    return {
        str(label.get("legato.resource.role", "")): str(label.get("legato.resource.name", ""))
        for label in related
    }


def fold_run_events(events: list[RunEvent]) -> Fold:
    """The deltas a batch of flow run state events adds, as the write-time triggers of
    migrations 0023/0025 (SQLite) and 0022/0024 (PostgreSQL) added them: a run enters
    ``to`` (and leaves ``from``) under the flow, deployment and queue its event names;
    entering a final state from a non-final one observes its duration (from the run's
    row: skipped once the run is deleted); leaving 'running' or entering a final state
    marks its task runs to count. (Start lateness stays a trigger: the scheduled time
    at the first start is overwritten by a later reschedule.)"""
    fold = Fold({}, {}, {})
    for event in events:
        exists = event.flow is not None
        if event.flow is not None:
            flow, deployment, queue = event.flow, event.deployment, event.work_queue
        else:
            names = _names(event.related or [])
            flow = names.get("flow", "")
            deployment = names.get("deployment", "")
            queue = names.get("work-queue", "")
        entered = fold.counts.setdefault((flow, deployment, queue, event.to_state), [0, 0])
        entered[0] += 1
        entered[1] += 1
        if event.from_state is not None:
            left = fold.counts.setdefault((flow, deployment, queue, event.from_state), [0, 0])
            left[1] -= 1
        if event.from_state is None or not exists:
            continue
        if (
            event.to_state in _FINAL_NAMES
            and event.from_state not in _FINAL_NAMES
            and event.duration is not None
        ):
            fold.observe("duration", flow, deployment, max(event.duration, 0.0))
        if event.from_state == "running" or event.to_state in _FINAL_NAMES:
            fold.ended[event.run_id] = flow
    return fold


def fold_rows(
    fold: Fold,
) -> tuple[
    list[tuple[str, str, str, str, int, int]],
    list[tuple[str, str, str, float, int, float]],
    list[tuple[str, str, str, int, int]],
]:
    """The fold's deltas as rows of the upserts of flow_run_counts, flow_run_histograms
    and task_run_counts (cells that add nothing left out)."""
    counts = [(*key, cell[0], cell[1]) for key, cell in fold.counts.items() if cell != [0, 0]]
    histograms = [(*key, int(cell[0]), cell[1]) for key, cell in fold.histograms.items()]
    tasks = [(*key, cell[0], cell[1]) for key, cell in fold.tasks.items()]
    return counts, histograms, tasks
