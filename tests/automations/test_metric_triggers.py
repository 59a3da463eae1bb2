"""Metric triggers: failure rate, queue depth, duration and lateness measured from the
run tables, firing once per breach (even with two evaluators) and resolving."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from legato.automations import metrics, service
from legato.automations.evaluator import Evaluator
from legato.automations.model import parse_automation
from legato.client import Client
from legato.engine.ids import new_id
from legato.errors import InvalidAutomationError
from legato.records import FlowRun, RunOwner
from legato.states import StateType as S
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")


def apply(store: Store, name: str, **trigger: Any) -> str:
    spec = {
        "name": name,
        "trigger": {"type": "metric", **trigger},
        "actions": [{"type": "pause-deployment", "deployment": "none"}],
    }
    [(stored, _)] = service.apply(store, [parse_automation(spec)])
    return stored.id


def owner() -> RunOwner:
    return RunOwner(token=new_id(), host="host-a", pid=4242, pid_started=1.0)


def finish(store: Store, state: S, *, seconds: float = 1.0, **changes: Any) -> None:
    """A run of flow "etl" that ran ``seconds`` and ended now (a later end each call)."""
    now = store.clock()
    run = FlowRun(id=new_id(), flow_name="etl", name="r", state=S.PENDING, **changes)
    store.create_flow_run(run)
    who = owner()
    started = now - timedelta(seconds=seconds)
    assert store.start_flow_run(run.id, who, from_states=[S.PENDING], now=started)
    store.finish_flow_run(run.id, who.token, state=state, now=now)


def queue(store: Store, work_queue: str, count: int, *, late: float = 5.0) -> None:
    due = store.clock() - timedelta(seconds=late)
    for _ in range(count):
        run = FlowRun(
            id=new_id(),
            flow_name="etl",
            name="q",
            state=S.SCHEDULED,
            work_queue=work_queue,
            scheduled_time=due,
        )
        store.create_flow_run(run)


def reasons(store: Store, aid: str) -> list[str]:
    return [f.reason for f in reversed(store.list_firings(aid, limit=100))]


def test_failure_rate_over_the_last_20_runs_fires_once_then_resolves(
    default_store: Store,
) -> None:
    store = default_store
    aid = apply(
        store,
        "failing-etl",
        metric="failure_rate",
        match_related={"legato.resource.id": "legato.flow.etl"},
        operator=">",
        threshold=0.5,
        last=20,
        min_runs=20,
        resolve=True,
    )
    evaluator = Evaluator(Client(store))
    for _ in range(20):
        finish(store, S.COMPLETED)
    for _ in range(10):  # 10 of the last 20: 50%, not over it
        finish(store, S.FAILED)
    assert evaluator.evaluate_metrics(force=True) == 0
    finish(store, S.CRASHED)  # 11 of the last 20
    assert evaluator.evaluate_metrics(force=True) == 1
    for _ in range(5):  # still over: no second firing
        finish(store, S.FAILED)
        assert evaluator.evaluate_metrics(force=True) == 0
    [fired] = reasons(store, aid)
    assert fired == "failure_rate 0.55 (threshold > 0.5) over 20 run(s) in 600s"
    for _ in range(20):
        finish(store, S.COMPLETED)
    assert evaluator.evaluate_metrics(force=True) == 1
    assert evaluator.evaluate_metrics(force=True) == 0
    assert reasons(store, aid)[1].startswith("resolved: failure_rate 0 (threshold > 0.5)")
    [resolved, first] = store.list_firings(aid)
    context = json.loads(resolved.actions[0].spec)["context"]["firing"]
    assert (context["resolved"], context["value"]) == (True, 0.0)
    assert json.loads(first.actions[0].spec)["context"]["firing"]["resolved"] is False
    assert store.list_buckets(aid) == []


def test_two_evaluators_measuring_at_once_fire_once(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = default_store
    aid = apply(store, "deep-queue", metric="queue_depth", threshold=10)
    queue(store, "q1", 11)
    both_measured = threading.Barrier(2, timeout=30)
    measure = metrics.evaluate
    calls = threading.local()

    def measured_together(*args: Any) -> Any:
        evaluation = measure(*args)
        if not getattr(calls, "waited", False):  # both compute a firing before either commits
            calls.waited = True
            both_measured.wait()
        return evaluation

    monkeypatch.setattr(metrics, "evaluate", measured_together)
    fired: list[int] = []

    def run() -> None:
        fired.append(Evaluator(Client(store)).evaluate_metrics(force=True))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(fired) == [0, 1]
    assert reasons(store, aid) == ["queue_depth in queue 'q1' 11 (threshold > 10)"]


def test_queue_depth_is_per_work_queue_and_waits_for_firing_for(default_store: Store) -> None:
    store = default_store
    deep = apply(store, "deep-queue", metric="queue_depth", operator=">", threshold=10)
    held = apply(store, "deep-for-an-hour", metric="queue_depth", threshold=10, firing_for=3600)
    queue(store, "q1", 11)
    queue(store, "q2", 3)
    queue(store, "q3", 20, late=-3600)  # not due yet: not waiting
    evaluator = Evaluator(Client(store), metric_interval=3600)
    assert evaluator.step().firings == 1
    assert [f.bucket_key for f in store.list_firings(deep)] == ["q1"]
    queue(store, "q2", 10)
    assert evaluator.step().firings == 0  # measured at most every metric_interval
    assert evaluator.evaluate_metrics(force=True) == 1
    assert sorted(f.bucket_key for f in store.list_firings(deep)) == ["q1", "q2"]
    assert store.list_firings(held) == []  # holds, but not for an hour yet
    assert sorted((b.key, b.count) for b in store.list_buckets(held)) == [("q1", 0), ("q2", 0)]


def test_a_healthy_stream_never_fires(default_store: Store) -> None:
    store = default_store
    ids = [
        apply(store, "rate", metric="failure_rate", threshold=0.2, min_runs=5),
        apply(store, "slow", metric="duration", statistic="p95", threshold=30),
        apply(store, "late", metric="lateness", statistic="max", threshold=60),
        apply(store, "deep", metric="queue_depth", threshold=10),
        apply(
            store,
            "other-flow",
            metric="failure_rate",
            threshold=0.1,
            match_related={"legato.resource.id": "legato.flow.other"},
        ),
    ]
    evaluator = Evaluator(Client(store))
    now = store.clock()
    for n in range(40):
        finish(store, S.FAILED if n % 10 == 0 else S.COMPLETED, seconds=2.0)
        if n % 8 == 0:
            assert evaluator.evaluate_metrics(force=True) == 0
    for _ in range(5):  # scheduled 10 s ago, started now: 10 s late
        run = FlowRun(
            id=new_id(),
            flow_name="etl",
            name="s",
            state=S.SCHEDULED,
            work_queue="q",
            scheduled_time=now - timedelta(seconds=10),
        )
        store.create_flow_run(run)
        assert store.start_flow_run(run.id, owner(), from_states=[S.SCHEDULED], now=store.clock())
    queue(store, "q", 3)
    assert evaluator.evaluate_metrics(force=True) == 0
    assert [store.count_firings(aid) for aid in ids] == [0, 0, 0, 0, 0]
    assert metrics.percentile([3.0, 1.0, 2.0], "p50") == 2.0
    assert metrics.percentile([float(n) for n in range(1, 101)], "p95") == 95.0


def test_a_duration_over_threshold_fires(default_store: Store) -> None:
    store = default_store
    aid = apply(store, "slow", metric="duration", statistic="max", threshold=30, range=60)
    finish(store, S.COMPLETED, seconds=5)
    evaluator = Evaluator(Client(store))
    assert evaluator.evaluate_metrics(force=True) == 0
    finish(store, S.COMPLETED, seconds=45)
    assert evaluator.evaluate_metrics(force=True) == 1
    assert reasons(store, aid) == ["duration max 45 (threshold > 30) over 2 run(s) in 60s"]


def test_invalid_metric_triggers_say_what_is_wrong() -> None:
    with pytest.raises(InvalidAutomationError, match=r"trigger\.range: .*positive"):
        parse_automation(
            {
                "name": "x",
                "trigger": {"type": "metric", "metric": "duration", "threshold": 1, "range": 0},
                "actions": [{"type": "pause-deployment", "deployment": "d"}],
            }
        )
    with pytest.raises(InvalidAutomationError, match=r"trigger\.metric"):
        parse_automation(
            {
                "name": "x",
                "trigger": {"type": "metric", "metric": "speed", "threshold": 1},
                "actions": [{"type": "pause-deployment", "deployment": "d"}],
            }
        )
