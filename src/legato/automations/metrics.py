"""Metric triggers: failure rate, duration, lateness and queue depth of flow runs.

Computed from the run tables (the store's ``list_finished_runs``,
``list_started_runs`` and ``list_late_runs``, index walks over the window only),
by the evaluator at most every ``interval`` seconds, not per event. A trigger's
state per key (one key, or one per work queue for ``queue_depth``) is a bucket:
it exists while the condition holds (``opened_at``: since when), and its
``count`` is 1 once it fired. The step is written with `commit_evaluation` under
its own cursor (``<evaluator>:metrics``, the time of the last step), a
compare-and-set: with two evaluators one step wins, so a breach fires once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato._automation_records import ActionRow, Bucket, Evaluation, Firing
from legato.automations.matching import label_problem
from legato.automations.model import Automation, MetricTrigger
from legato.engine.ids import new_id
from legato.records import FlowRun
from legato.states import StateType

if TYPE_CHECKING:
    from legato.store.base import Store

#: seconds between two metric steps of an evaluator
INTERVAL = 10.0
#: runs read per window at most
RUN_LIMIT = 5000

_FAILED = {StateType.FAILED, StateType.CRASHED}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


@dataclass(frozen=True, slots=True)
class Reading:
    """A metric's value for one key, over ``runs`` runs (queue depth: the depth)."""

    key: str
    value: float
    runs: int


def run_labels(run: FlowRun) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The run's resource and related resources, labelled as its state events are."""
    state = run.state.value.capitalize()
    resource = {
        "legato.resource.id": f"legato.flow-run.{run.id}",
        "legato.resource.name": run.name,
        "legato.state-name": state,
    }
    related = [
        {
            "legato.resource.id": f"legato.flow.{run.flow_name}",
            "legato.resource.role": "flow",
            "legato.resource.name": run.flow_name,
        }
    ]
    if run.deployment is not None:
        related.append(
            {
                "legato.resource.id": f"legato.deployment.{run.deployment}",
                "legato.resource.role": "deployment",
                "legato.resource.name": run.deployment,
            }
        )
    if run.work_queue is not None:
        related.append(
            {
                "legato.resource.id": f"legato.work-queue.{run.work_queue}",
                "legato.resource.role": "work-queue",
                "legato.resource.name": run.work_queue,
            }
        )
    related += [
        {"legato.resource.id": f"legato.tag.{t}", "legato.resource.role": "tag"} for t in run.tags
    ]
    return resource, related


def in_scope(trigger: MetricTrigger, run: FlowRun) -> bool:
    """Whether ``run`` is one the trigger measures (its ``match`` / ``match_related``)."""
    resource, related = run_labels(run)
    if label_problem(resource, trigger.match) is not None:
        return False
    if not trigger.match_related:
        return True
    return any(label_problem(r, trigger.match_related) is None for r in related)


def percentile(values: list[float], statistic: str) -> float:
    """Nearest-rank p50 / p95, or the max, of non-empty ``values``."""
    ordered = sorted(values)
    if statistic == "max":
        return ordered[-1]
    fraction = 0.5 if statistic == "p50" else 0.95
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class _Runs:
    """The store's run windows of one step, read once and shared by the triggers."""

    def __init__(self, store: Store, now: datetime) -> None:
        self.store = store
        self.now = now
        self._finished: dict[timedelta, list[FlowRun]] = {}
        self._started: dict[timedelta, list[FlowRun]] = {}
        self._due: list[FlowRun] | None = None

    def finished(self, window: timedelta) -> list[FlowRun]:
        if window not in self._finished:
            since = self.now - window
            self._finished[window] = self.store.list_finished_runs(since=since, limit=RUN_LIMIT)
        return self._finished[window]

    def started(self, window: timedelta) -> list[FlowRun]:
        if window not in self._started:
            since = self.now - window
            self._started[window] = self.store.list_started_runs(since=since, limit=RUN_LIMIT)
        return self._started[window]

    def due(self) -> list[FlowRun]:
        if self._due is None:
            self._due = self.store.list_late_runs(due_before=self.now, limit=RUN_LIMIT)
        return self._due


def read(trigger: MetricTrigger, runs: _Runs) -> list[Reading]:
    """The trigger's readings now (none: not enough runs for a value)."""
    now = runs.now
    if trigger.metric == "queue_depth":
        depth: dict[str, int] = {}
        for run in runs.due():
            if in_scope(trigger, run):
                queue = run.work_queue or ""
                depth[queue] = depth.get(queue, 0) + 1
        return [Reading(queue, float(n), n) for queue, n in sorted(depth.items())]
    values: list[float] = []
    if trigger.metric == "lateness":
        for run in runs.started(trigger.range):
            if in_scope(trigger, run) and run.start_time and run.scheduled_time:
                values.append(max(0.0, (run.start_time - run.scheduled_time).total_seconds()))
        for run in runs.due():
            if in_scope(trigger, run) and run.scheduled_time is not None:
                values.append(max(0.0, (now - run.scheduled_time).total_seconds()))
    else:
        finished = [r for r in runs.finished(trigger.range) if in_scope(trigger, r)]
        if trigger.metric == "duration":
            finished = [r for r in finished if r.start_time and r.end_time]
        finished = finished[: trigger.last] if trigger.last else finished
        if trigger.metric == "failure_rate":
            if len(finished) >= trigger.min_runs:
                failed = sum(1 for r in finished if r.state in _FAILED)
                return [Reading("", failed / len(finished), len(finished))]
            return []
        for run in finished:
            if run.start_time is not None and run.end_time is not None:
                values.append((run.end_time - run.start_time).total_seconds())
    if len(values) < trigger.min_runs:
        return []
    return [Reading("", percentile(values, trigger.statistic), len(values))]


def describe(trigger: MetricTrigger, reading: Reading) -> str:
    """``failure_rate 0.55 > 0.5 over 20 run(s) in 600s`` and the like."""
    name: str = trigger.metric
    if trigger.metric in ("duration", "lateness"):
        name = f"{trigger.metric} {trigger.statistic}"
    where = f" in queue '{reading.key}'" if trigger.metric == "queue_depth" else ""
    window = (
        ""
        if trigger.metric == "queue_depth"
        else f" over {reading.runs} run(s) in {trigger.range.total_seconds():g}s"
    )
    limit = f"{trigger.operator} {trigger.threshold:g}"
    return f"{name}{where} {reading.value:g} (threshold {limit}){window}"


def _firing(
    aid: str, automation: Automation, key: str, reason: str, now: datetime, extra: dict[str, Any]
) -> Firing:
    firing_id = new_id()
    context = {
        "automation": {"id": aid, "name": automation.name},
        "firing": {
            "id": firing_id,
            "reason": reason,
            "bucket": key,
            "event_ids": [],
            "fired_at": now.isoformat(),
            **extra,
        },
    }
    actions = tuple(
        ActionRow(
            firing_id=firing_id,
            index=i,
            spec=json.dumps({"action": action.model_dump(mode="json"), "context": context}),
            next_attempt_at=now,
            automation_id=aid,
        )
        for i, action in enumerate(automation.actions)
    )
    return Firing(
        id=firing_id,
        automation_id=aid,
        fired_at=now,
        bucket_key=key,
        event_ids=(),
        reason=reason,
        actions=actions,
    )


def evaluate(
    store: Store,
    automations: Mapping[str, Automation],
    stored: Iterable[Bucket],
    now: datetime,
) -> Evaluation:
    """One metric step over ``automations`` (by id, each with a metric trigger) given
    their ``stored`` buckets: the bucket changes and firings to commit."""
    runs = _Runs(store, now)
    buckets = {(b.automation_id, b.key): b for b in stored}
    upserts: list[Bucket] = []
    deletes: list[tuple[str, str]] = []
    firings: list[Firing] = []
    for aid, automation in automations.items():
        trigger = automation.trigger
        if not isinstance(trigger, MetricTrigger):
            raise TypeError(f"automation '{automation.name}' has a {trigger.type} trigger")
        readings = {r.key: r for r in read(trigger, runs)}
        compare = _COMPARE[trigger.operator]
        keys = set(readings) | {k for (a, k) in buckets if a == aid}
        for key in sorted(keys):
            reading = readings.get(key)
            if reading is None and trigger.metric == "queue_depth":
                reading = Reading(key, 0.0, 0)  # the queue emptied
            bucket = buckets.get((aid, key))
            holds = reading is not None and compare(reading.value, trigger.threshold)
            metric = {"metric": trigger.metric, "value": reading.value if reading else None}
            if holds and reading is not None:
                if bucket is None:
                    bucket = Bucket(aid, key, now, 0)
                    upserts.append(bucket)
                if bucket.count == 0 and now - bucket.opened_at >= trigger.firing_for:
                    reason = describe(trigger, reading)
                    if trigger.firing_for:
                        reason += f" for {trigger.firing_for.total_seconds():g}s"
                    extra = {**metric, "resolved": False}
                    firings.append(_firing(aid, automation, key, reason, now, extra))
                    upserts.append(Bucket(aid, key, bucket.opened_at, 1))
            elif bucket is not None:
                deletes.append((aid, key))
                if bucket.count and trigger.resolve:
                    reason = "resolved: " + (
                        "too few runs in the range to measure"
                        if reading is None
                        else f"{describe(trigger, reading)} no longer holds"
                    )
                    extra = {**metric, "resolved": True}
                    firings.append(_firing(aid, automation, key, reason, now, extra))
    latest = {(b.automation_id, b.key): b for b in upserts}  # the last write of a key wins
    return Evaluation(
        upserts=tuple(latest.values()), deletes=tuple(deletes), firings=tuple(firings)
    )
