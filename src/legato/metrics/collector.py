"""The ``/metrics`` collector: run metrics from the store, one cached snapshot.

Every figure comes from a handful of small reads (the aggregate tables, into which
the reads first fold the flow run events recorded since the previous scrape; the
waiting runs' index, workers, limits), never a scan of the runs, so a scrape costs
the same on a store of a million runs. A snapshot
is reused for ``cache_seconds``. Labels are names (flows, deployments, queues,
limits, states), never ids; each kind of name is capped at ``max_names`` distinct
values (the busiest), the rest reported as ``other``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from legato._llm_records import LLMUsageCounter
from legato.records import utcnow
from legato.states import FINAL_STATES
from legato.store.base import Store
from legato.store.base_metrics import (
    HISTOGRAM_BOUNDS,
    FlowRunCountRow,
    HistogramRow,
    TaskRunCountRow,
)

from .store_timing import STORE_OP_BOUNDS, StoreOpTimings

#: Label value of the names beyond the cap.
OTHER = "other"
#: Default cap on distinct values of each kind of name.
MAX_NAMES = 50
#: A worker whose heartbeat is older than this is not counted as alive.
WORKER_ALIVE_SECONDS = 30.0
_FINAL = frozenset(state.value for state in FINAL_STATES)


@dataclass(frozen=True)
class Snapshot:
    """What one scrape reports, read from the store at ``taken``."""

    taken: datetime
    counts: list[FlowRunCountRow]
    histograms: list[HistogramRow]
    task_counts: list[TaskRunCountRow]
    queue_oldest: dict[str, datetime]
    workers: int
    limits: list[tuple[str, int]]
    replays: dict[str, int]
    events: dict[str, int]
    llm: list[LLMUsageCounter]


def read_snapshot(store: Store) -> Snapshot:
    now = utcnow()
    workers = store.list_workers(seen_since=now - timedelta(seconds=WORKER_ALIVE_SECONDS))
    return Snapshot(
        taken=now,
        counts=store.metric_run_counts(),
        histograms=store.metric_histograms(),
        task_counts=store.metric_task_counts(),
        queue_oldest=store.metric_queue_oldest(),
        workers=sum(1 for worker in workers if worker.stopped_at is None),
        limits=[(limit.name, limit.active) for limit in store.list_limits(now=now)],
        replays=store.metric_task_replays(),
        # Counts the events recorded since the previous scrape (the store keeps the
        # totals and the last one counted): a scrape costs the new events only.
        events=store.metric_event_counts(),
        # Monotonic totals the store keeps as model-call tries are written.
        llm=store.llm_usage_counters(),
    )


def cap_names(weights: dict[str, float], max_names: int) -> Callable[[str], str]:
    """Map each name to itself when among the ``max_names`` heaviest, else to OTHER."""
    kept = set(sorted(weights, key=lambda name: (-weights[name], name))[:max_names])
    return lambda name: name if name in kept else OTHER


def _weights(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    found: dict[str, float] = defaultdict(float)
    for name, weight in pairs:
        found[name] += weight
    return found


def _cumulative(counts: Iterable[int], bounds: Iterable[float]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip([*bounds, math.inf], counts, strict=True):
        running += count
        out.append(("+Inf" if bound == math.inf else repr(float(bound)), float(running)))
    return out


class StoreCollector(Collector):
    """Run metrics of one store, read at most once per ``cache_seconds``."""

    def __init__(
        self,
        store: Store,
        *,
        cache_seconds: float = 5.0,
        max_names: int = MAX_NAMES,
        timings: StoreOpTimings | None = None,
    ) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._max_names = max_names
        self._timings = timings
        self._lock = threading.Lock()
        self._cached: tuple[float, Snapshot] | None = None

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._cache_seconds:
                self._cached = (now, read_snapshot(self._store))
            return self._cached[1]

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        yield from self._run_metrics(snap)
        yield from self._histograms(snap)
        yield from self._task_metrics(snap)
        yield from self._queue_metrics(snap)
        workers = GaugeMetricFamily("legato_workers", "Workers with a live heartbeat.")
        workers.add_metric([], snap.workers)
        yield workers
        limits = GaugeMetricFamily(
            "legato_limit_slots_used", "Slots of each global limit held now.", labels=["limit"]
        )
        limit_name = cap_names(_weights(snap.limits), self._max_names)
        used: dict[str, float] = _weights((limit_name(name), n) for name, n in snap.limits)
        for name, n in sorted(used.items()):
            limits.add_metric([name], n)
        yield limits
        events_name = cap_names(_weights(snap.events.items()), self._max_names)
        events = CounterMetricFamily(
            "legato_events",
            "Events recorded, by name (counted from the store, pruned ones included).",
            labels=["event"],
        )
        for name, n in sorted(
            _weights((events_name(e), n) for e, n in snap.events.items()).items()
        ):
            events.add_metric([name], n)
        yield events
        yield from self._llm_metrics(snap)
        if self._timings is not None:
            yield store_op_metric(self._timings)

    def _run_metrics(self, snap: Snapshot) -> Iterator[Metric]:
        flow = cap_names(_weights((r.flow, r.entered) for r in snap.counts), self._max_names)
        deployment = cap_names(
            _weights((r.deployment, r.entered) for r in snap.counts), self._max_names
        )
        queue = cap_names(_weights((r.work_queue, r.entered) for r in snap.counts), self._max_names)
        totals: dict[tuple[str, str, str], float] = defaultdict(float)
        now_in: dict[tuple[str, str], float] = defaultdict(float)
        for r in snap.counts:
            totals[(flow(r.flow), deployment(r.deployment), r.state)] += r.entered
            if r.state not in _FINAL:
                now_in[(r.state, queue(r.work_queue))] += r.current
        runs_total = CounterMetricFamily(
            "legato_flow_runs",
            "Flow runs that entered each state (from the store: crashed and never-started "
            "runs count).",
            labels=["flow", "deployment", "state"],
        )
        for labels, value in sorted(totals.items()):
            runs_total.add_metric(list(labels), value)
        yield runs_total
        runs_now = GaugeMetricFamily(
            "legato_flow_runs",
            "Flow runs in each non-final state now.",
            labels=["state", "work_queue"],
        )
        for (state, work_queue), n in sorted(now_in.items()):
            runs_now.add_metric([state, work_queue], n)
        yield runs_now

    def _histograms(self, snap: Snapshot) -> Iterator[Metric]:
        specs = {
            "duration": (
                "legato_flow_run_duration_seconds",
                "Flow run durations (start to end) of finished runs.",
                ["flow", "deployment"],
            ),
            "lateness": (
                "legato_flow_run_start_lateness_seconds",
                "How long after their scheduled time runs started.",
                ["deployment", "work_queue"],
            ),
            "task_duration": (
                "legato_task_run_duration_seconds",
                "Task run durations, counted like legato_task_runs.",
                ["flow", "task"],
            ),
        }
        for metric, (name, doc, labels) in specs.items():
            rows = [r for r in snap.histograms if r.metric == metric]
            first = cap_names(_weights((r.a, r.n) for r in rows), self._max_names)
            second = cap_names(_weights((r.b, r.n) for r in rows), self._max_names)
            index = {bound: i for i, bound in enumerate(HISTOGRAM_BOUNDS)}
            grouped: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
            for r in rows:
                key = (first(r.a), second(r.b))
                counts, total = grouped.setdefault(key, ([0] * (len(HISTOGRAM_BOUNDS) + 1), [0.0]))
                counts[index.get(r.le, len(HISTOGRAM_BOUNDS))] += r.n
                total[0] += r.total
            family = HistogramMetricFamily(name, doc, labels=labels)
            for key, (counts, total) in sorted(grouped.items()):
                family.add_metric(list(key), _cumulative(counts, HISTOGRAM_BOUNDS), total[0])
            yield family

    def _task_metrics(self, snap: Snapshot) -> Iterator[Metric]:
        rows = snap.task_counts
        flow = cap_names(_weights((r.flow, r.n) for r in rows), self._max_names)
        task = cap_names(_weights((r.task, r.n) for r in rows), self._max_names)
        totals: dict[tuple[str, str, str], float] = defaultdict(float)
        cached = 0
        for r in rows:
            totals[(flow(r.flow), task(r.task), r.state)] += r.n
            cached += r.cached
        family = CounterMetricFamily(
            "legato_task_runs",
            "Task runs by the final state they reached: each final record once, counted "
            "at the end of the flow run attempt that wrote it.",
            labels=["flow", "task", "state"],
        )
        for (flow_name, task_name, state), n in sorted(totals.items()):
            family.add_metric([flow_name, task_name, state], n)
        yield family
        hits = CounterMetricFamily(
            "legato_task_cache_hits",
            "Task runs whose result came from the cache (counted like legato_task_runs).",
        )
        hits.add_metric([], cached)
        yield hits
        replay_flow = cap_names(_weights(snap.replays.items()), self._max_names)
        replays = CounterMetricFamily(
            "legato_task_replays",
            "Task calls answered from the journal instead of run (added at each attempt end).",
            labels=["flow"],
        )
        for name, n in sorted(
            _weights((replay_flow(f), n) for f, n in snap.replays.items()).items()
        ):
            replays.add_metric([name], n)
        yield replays

    def _llm_metrics(self, snap: Snapshot) -> Iterator[Metric]:
        rows = snap.llm
        flow = cap_names(_weights((r.flow_name, r.calls) for r in rows), self._max_names)
        deployment = cap_names(
            _weights((r.deployment_name, r.calls) for r in rows), self._max_names
        )
        provider = cap_names(_weights((r.provider, r.calls) for r in rows), self._max_names)
        model = cap_names(_weights((r.model, r.calls) for r in rows), self._max_names)
        calls: dict[tuple[str, str, str, str], float] = defaultdict(float)
        cost: dict[tuple[str, str, str, str], float] = defaultdict(float)
        tokens: dict[tuple[str, str, str, str, str], float] = defaultdict(float)
        for r in rows:
            key = (flow(r.flow_name), deployment(r.deployment_name), provider(r.provider))
            labels = (*key, model(r.model))
            calls[labels] += r.calls
            cost[labels] += r.cost_usd
            for kind, n in (
                ("input", r.usage.input_tokens),
                ("output", r.usage.output_tokens),
                ("cached", r.usage.cached_tokens),
                ("reasoning", r.usage.reasoning_tokens),
            ):
                tokens[(*labels, kind)] += n
        names = ["flow", "deployment", "provider", "model"]
        calls_family = CounterMetricFamily(
            "legato_llm_calls",
            "Answered model-call tries (validation retries included; a fork's copies not).",
            labels=names,
        )
        for labels, tries in sorted(calls.items()):
            calls_family.add_metric(list(labels), tries)
        yield calls_family
        tokens_family = CounterMetricFamily(
            "legato_llm_tokens",
            "Tokens of answered model-call tries by kind (cached is part of input, "
            "reasoning part of output).",
            labels=[*names, "kind"],
        )
        for token_labels, count in sorted(tokens.items()):
            tokens_family.add_metric(list(token_labels), count)
        yield tokens_family
        cost_family = CounterMetricFamily(
            "legato_llm_cost_usd",
            "Cost in USD of answered model-call tries (tries of unpriced models add 0).",
            labels=names,
        )
        for labels, usd in sorted(cost.items()):
            cost_family.add_metric(list(labels), usd)
        yield cost_family

    def _queue_metrics(self, snap: Snapshot) -> Iterator[Metric]:
        waiting = _weights(
            (r.work_queue, r.current)
            for r in snap.counts
            if r.state == "scheduled" and r.work_queue
        )
        queue = cap_names(waiting, self._max_names)
        depth = GaugeMetricFamily(
            "legato_work_queue_depth", "Runs waiting in each work queue.", labels=["work_queue"]
        )
        for name, n in sorted(_weights((queue(q), n) for q, n in waiting.items()).items()):
            depth.add_metric([name], n)
        yield depth
        oldest_family = GaugeMetricFamily(
            "legato_work_queue_oldest_seconds",
            "Age of the oldest run waiting in each work queue, from its scheduled time.",
            labels=["work_queue"],
        )
        oldest: dict[str, float] = {}
        for name, scheduled in snap.queue_oldest.items():
            age = max((snap.taken - scheduled).total_seconds(), 0.0)
            label = queue(name)
            oldest[label] = max(oldest.get(label, 0.0), age)
        for name, age in sorted(oldest.items()):
            oldest_family.add_metric([name], age)
        yield oldest_family


def store_op_metric(timings: StoreOpTimings) -> Metric:
    family = HistogramMetricFamily(
        "legato_store_op_seconds",
        "Store operations timed in this process.",
        labels=["backend", "op"],
    )
    for op, (counts, total) in sorted(timings.snapshot().items()):
        family.add_metric([timings.backend, op], _cumulative(counts, STORE_OP_BOUNDS), total)
    return family


class StoreTimingCollector(Collector):
    """Only the store operation timings (for a worker's own metrics)."""

    def __init__(self, timings: StoreOpTimings) -> None:
        self._timings = timings

    def collect(self) -> Iterator[Metric]:
        yield store_op_metric(self._timings)
