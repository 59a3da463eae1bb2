"""Prometheus metric aggregates contract: per-(flow, deployment, queue, state) counts
and duration/lateness histogram buckets reflect every change, whoever makes it (a
crash marked by another process counts), folded from the events index when read, on
every backend."""

from __future__ import annotations

import itertools
import math
from datetime import timedelta

import pytest
from test_contract import T0, at, make_owner, make_run, make_task

from legato._event_records import Event
from legato.errors import RunOwnershipLost
from legato.records import utcnow
from legato.states import StateType as S
from legato.store.base import Store
from legato.store.base_metrics import HISTOGRAM_BOUNDS, FlowRunCountRow, HistogramRow


def counts(store: Store) -> dict[tuple[str, str, str, str], tuple[int, int]]:
    rows: list[FlowRunCountRow] = store.metric_run_counts()
    return {(r.flow, r.deployment, r.work_queue, r.state): (r.entered, r.current) for r in rows}


def buckets(store: Store, metric: str) -> dict[tuple[str, str, float], tuple[int, float]]:
    rows: list[HistogramRow] = store.metric_histograms()
    return {(r.a, r.b, r.le): (r.n, round(r.total, 6)) for r in rows if r.metric == metric}


def test_counts_follow_every_state_change(store: Store) -> None:
    assert counts(store) == {}
    done = make_run(deployment="nightly", work_queue="q")
    crashed = make_run(flow_name="load")
    never = make_run(flow_name="load")
    for run in (done, crashed, never):
        store.create_flow_run(run)
    owner = make_owner()
    assert store.start_flow_run(done.id, owner, from_states=[S.PENDING], now=at(1))
    store.finish_flow_run(done.id, owner.token, state=S.COMPLETED, now=at(4))
    assert store.start_flow_run(crashed.id, make_owner(), from_states=[S.PENDING], now=at(2))
    # Another actor marks the run crashed (its process died): counted all the same.
    assert store.transition_flow_run(
        crashed.id, to_state=S.CRASHED, from_states=[S.RUNNING], now=at(700)
    )
    assert counts(store) == {
        ("etl", "nightly", "q", "pending"): (1, 0),
        ("etl", "nightly", "q", "running"): (1, 0),
        ("etl", "nightly", "q", "completed"): (1, 1),
        ("load", "", "", "pending"): (2, 1),
        ("load", "", "", "running"): (1, 0),
        ("load", "", "", "crashed"): (1, 1),
    }
    assert buckets(store, "duration") == {
        ("etl", "nightly", 5.0): (1, 3.0),
        ("load", "", 900.0): (1, 698.0),
    }


def test_lateness_is_observed_at_the_first_start_of_scheduled_runs(store: Store) -> None:
    late = make_run(state=S.SCHEDULED, work_queue="q", deployment="d", scheduled_time=at(5))
    very_late = make_run(state=S.SCHEDULED, work_queue="q", deployment="d", scheduled_time=at(0))
    for run in (late, very_late):
        store.create_flow_run(run)
    assert store.start_flow_run(late.id, make_owner(), from_states=[S.SCHEDULED], now=at(5.05))
    assert store.start_flow_run(
        very_late.id, make_owner(), from_states=[S.SCHEDULED], now=at(100_000)
    )
    found = buckets(store, "lateness")
    assert found.keys() == {("d", "q", 0.1), ("d", "q", math.inf)}
    assert found[("d", "q", math.inf)] == (1, 100_000.0)
    assert found[("d", "q", 0.1)][0] == 1
    assert all(le in HISTOGRAM_BOUNDS or le == math.inf for _, _, le in found)


def test_waiting_runs_oldest_scheduled_time_per_queue(store: Store) -> None:
    assert store.metric_queue_oldest() == {}
    for seconds, queue in ((30, "a"), (10, "a"), (20, "b")):
        store.create_flow_run(
            make_run(state=S.SCHEDULED, work_queue=queue, scheduled_time=at(seconds))
        )
    started = make_run(state=S.SCHEDULED, work_queue="b", scheduled_time=at(1))
    store.create_flow_run(started)
    assert store.start_flow_run(started.id, make_owner(), from_states=[S.SCHEDULED], now=at(2))
    assert store.metric_queue_oldest() == {"a": at(10), "b": at(20)}
    scheduled = counts(store)
    assert scheduled[("etl", "", "a", "scheduled")] == (2, 2)
    assert scheduled[("etl", "", "b", "scheduled")] == (2, 1)


def test_pruned_runs_leave_the_gauge_but_stay_in_the_totals(store: Store) -> None:
    run = make_run()
    store.create_flow_run(run)
    owner = make_owner()
    assert store.start_flow_run(run.id, owner, from_states=[S.PENDING], now=at(1))
    store.finish_flow_run(run.id, owner.token, state=S.FAILED, now=at(2))
    pruned = store.prune_flow_runs(finished_before=T0 + timedelta(days=1), states=[S.FAILED])
    assert pruned.flow_runs == 1
    assert counts(store)[("etl", "", "", "failed")] == (1, 0)


def task_counts(store: Store) -> dict[tuple[str, str, str], tuple[int, int]]:
    return {(r.flow, r.task, r.state): (r.n, r.cached) for r in store.metric_task_counts()}


def test_task_runs_are_counted_when_their_flow_run_ends(store: Store) -> None:
    run = make_run()
    store.create_flow_run(run)
    owner = make_owner()
    assert store.start_flow_run(run.id, owner, from_states=[S.PENDING], now=at(1))
    store.record_task_run(make_task(run, "fetch[0]"), owner.token)
    store.record_task_run(make_task(run, "fetch[1]", cached=True), owner.token)
    store.record_task_run(
        make_task(run, "load[0]", state=S.FAILED, start_time=at(2), end_time=at(42)),
        owner.token,
    )
    assert task_counts(store) == {}  # nothing on the per-task path
    store.finish_flow_run(run.id, owner.token, state=S.CRASHED, now=at(50))
    assert task_counts(store) == {
        ("etl", "fetch", "completed"): (2, 1),
        ("etl", "load", "failed"): (1, 0),
    }
    assert buckets(store, "task_duration") == {
        ("etl", "fetch", 1.0): (2, 2.0),
        ("etl", "load", 60.0): (1, 40.0),
    }
    # Resumed: nothing is taken back (a counter never goes down); the call that failed
    # and now completes counts once more, in its new state.
    assert store.transition_flow_run(
        run.id, to_state=S.PENDING, from_states=[S.CRASHED], now=at(60)
    )
    assert task_counts(store)[("etl", "load", "failed")] == (1, 0)
    resumed = make_owner()
    assert store.start_flow_run(run.id, resumed, from_states=[S.PENDING], now=at(61))
    store.record_task_run(
        make_task(run, "load[0]", start_time=at(62), end_time=at(63)), resumed.token
    )
    store.finish_flow_run(run.id, resumed.token, state=S.COMPLETED, now=at(64))
    assert task_counts(store) == {
        ("etl", "fetch", "completed"): (2, 1),
        ("etl", "load", "failed"): (1, 0),
        ("etl", "load", "completed"): (1, 0),
    }
    assert buckets(store, "task_duration") == {
        ("etl", "fetch", 1.0): (2, 2.0),
        ("etl", "load", 60.0): (1, 40.0),
        ("etl", "load", 1.0): (1, 1.0),
    }


def test_task_counts_only_grow_and_count_each_final_record_once(store: Store) -> None:
    """Every attempt end counts the records that reached a final state since the run's
    previous count: a sleep, a crash marked by another process, a resume; the totals
    equal the final records written."""
    run = make_run()
    store.create_flow_run(run)
    owner = make_owner()
    assert store.start_flow_run(run.id, owner, from_states=[S.PENDING], now=at(1))
    store.record_task_run(make_task(run, "fetch[0]"), owner.token)
    store.record_task_run(
        make_task(run, "load[0]", state=S.RUNNING, start_time=at(3), end_time=None),
        owner.token,
    )
    # A durable sleep ends the attempt: the final record counts, the running one not.
    store.reschedule_flow_run(run.id, owner.token, scheduled_time=at(10), message="sleeping")
    assert task_counts(store) == {("etl", "fetch", "completed"): (1, 0)}
    woken = make_owner()
    assert store.start_flow_run(run.id, woken, from_states=[S.SCHEDULED], now=at(10))
    store.record_task_run(
        make_task(run, "load[0]", state=S.FAILED, start_time=at(11), end_time=at(12)),
        woken.token,
    )
    # Another process marks the run crashed: counted all the same, once.
    assert store.transition_flow_run(
        run.id, to_state=S.CRASHED, from_states=[S.RUNNING], now=at(700)
    )
    seen = [dict(task_counts(store))]
    assert seen[-1] == {("etl", "fetch", "completed"): (1, 0), ("etl", "load", "failed"): (1, 0)}
    for attempt, end in ((2, 801.0), (3, 901.0)):
        assert store.transition_flow_run(
            run.id, to_state=S.PENDING, from_states=[S.CRASHED, S.FAILED], now=at(end - 100)
        )
        again = make_owner()
        assert store.start_flow_run(run.id, again, from_states=[S.PENDING], now=at(end - 50))
        final = S.FAILED if attempt == 2 else S.COMPLETED
        store.record_task_run(
            make_task(run, "load[0]", state=final, start_time=at(end - 1), end_time=at(end)),
            again.token,
        )
        store.finish_flow_run(run.id, again.token, state=final, now=at(end + 1))
        seen.append(dict(task_counts(store)))
    for before, after in itertools.pairwise(seen):
        assert all(after.get(key, (0, 0))[0] >= n for key, (n, _) in before.items())
    # Final records written: fetch once, load failed twice then completed once.
    assert seen[-1] == {
        ("etl", "fetch", "completed"): (1, 0),
        ("etl", "load", "failed"): (2, 0),
        ("etl", "load", "completed"): (1, 0),
    }
    durations = buckets(store, "task_duration")
    assert sum(n for n, _ in durations.values()) == 4
    # Pruning the run keeps the totals.
    pruned = store.prune_flow_runs(finished_before=T0 + timedelta(days=1), states=[S.COMPLETED])
    assert pruned.flow_runs == 1
    assert task_counts(store) == seen[-1]


def test_replayed_calls_are_added_at_attempt_ends(store: Store) -> None:
    run = make_run()
    other = make_run(flow_name="load")
    for each in (run, other):
        store.create_flow_run(each)
    assert store.metric_task_replays() == {}
    owner = make_owner()
    assert store.start_flow_run(run.id, owner, from_states=[S.PENDING], now=at(1))
    store.reschedule_flow_run(
        run.id, owner.token, scheduled_time=at(5), message="sleeping", replayed=2
    )
    again = make_owner()
    assert store.start_flow_run(run.id, again, from_states=[S.SCHEDULED], now=at(5))
    store.finish_flow_run(run.id, again.token, state=S.COMPLETED, now=at(6), replayed=3)
    loader = make_owner()
    assert store.start_flow_run(other.id, loader, from_states=[S.PENDING], now=at(1))
    store.finish_flow_run(other.id, loader.token, state=S.FAILED, now=at(2), replayed=0)
    assert store.metric_task_replays() == {"etl": 5}
    # A fenced-out writer adds nothing.
    with pytest.raises(RunOwnershipLost):
        store.finish_flow_run(run.id, owner.token, state=S.FAILED, now=at(7), replayed=9)
    assert store.metric_task_replays() == {"etl": 5}


def named_event(n: int, name: str) -> Event:
    return Event(
        id=f"ev-{name}-{n}",
        event=name,
        occurred=T0 + timedelta(seconds=n),
        resource={"legato.resource.id": f"thing.{n}"},
        related=(),
        payload={},
    )


def test_events_are_counted_incrementally_and_stay_counted(store: Store) -> None:
    def mine(found: dict[str, int]) -> dict[str, int]:
        return {name: n for name, n in found.items() if name.startswith("test.")}

    assert mine(store.metric_event_counts()) == {}
    store.emit_events([named_event(n, "test.a") for n in range(3)])
    store.emit_events([named_event(n, "test.b") for n in range(2)])
    assert mine(store.metric_event_counts()) == {"test.a": 3, "test.b": 2}
    # Counted once: the next call reads only what came after.
    store.emit_events([named_event(9, "test.b")])
    assert mine(store.metric_event_counts()) == {"test.a": 3, "test.b": 3}
    # A bounded batch per call; the rest at the next.
    store.emit_events([named_event(n, "test.c") for n in range(5)])
    assert mine(store.metric_event_counts(batch=2)) == {"test.a": 3, "test.b": 3, "test.c": 2}
    assert mine(store.metric_event_counts(batch=2)) == {"test.a": 3, "test.b": 3, "test.c": 4}
    assert mine(store.metric_event_counts()) == {"test.a": 3, "test.b": 3, "test.c": 5}
    # Pruned events (counted before retention removed them) stay counted; the totals
    # equal every event ever stored.
    total = len(store.read_events(None, limit=10_000).events)
    assert store.prune_events(received_before=utcnow() + timedelta(days=1)) == total
    found = store.metric_event_counts()
    assert mine(found) == {"test.a": 3, "test.b": 3, "test.c": 5}
    assert sum(found.values()) == total


def test_the_counts_are_folded_from_the_events_at_read_in_bounded_batches(
    store: Store,
) -> None:
    """A run's state changes only write their events; a read folds the events after the
    watermark into the counts, at most ``batch`` per fold, the rest at the next."""
    while store.fold_run_metrics():
        pass  # whatever other events the store holds
    runs = [make_run(flow_name="batched") for _ in range(3)]
    for run in runs:
        store.create_flow_run(run)
    moved = [store.fold_run_metrics(batch=1) for _ in range(3)]
    assert all(n > 0 for n in moved)  # one event each: nothing was folded at write
    assert store.fold_run_metrics(batch=1) == 0
    assert counts(store)[("batched", "", "", "pending")] == (3, 3)


def test_lateness_is_observed_once_per_run_not_at_each_wake_up(store: Store) -> None:
    run = make_run(state=S.SCHEDULED, work_queue="q", deployment="d", scheduled_time=at(0))
    store.create_flow_run(run)
    owner = make_owner()
    assert store.start_flow_run(run.id, owner, from_states=[S.SCHEDULED], now=at(2))
    store.reschedule_flow_run(run.id, owner.token, scheduled_time=at(100), message="sleeping")
    woken = make_owner()
    assert store.start_flow_run(run.id, woken, from_states=[S.SCHEDULED], now=at(400))
    assert buckets(store, "lateness") == {("d", "q", 5.0): (1, 2.0)}


def test_a_run_deleted_before_any_read_still_counts_and_leaves_the_gauge(
    store: Store,
) -> None:
    """The deletion takes the run out of the gauge before the fold has put it in; the
    fold then adds its states from its events (under the names they carry): the sum
    is the same in either order."""
    run = make_run(flow_name="gone")
    store.create_flow_run(run)
    owner = make_owner()
    assert store.start_flow_run(run.id, owner, from_states=[S.PENDING], now=at(1))
    store.finish_flow_run(run.id, owner.token, state=S.COMPLETED, now=at(2))
    pruned = store.prune_flow_runs(finished_before=T0 + timedelta(days=1), states=[S.COMPLETED])
    assert pruned.flow_runs == 1
    found = {key: value for key, value in counts(store).items() if key[0] == "gone"}
    assert found == {
        ("gone", "", "", "pending"): (1, 0),
        ("gone", "", "", "running"): (1, 0),
        ("gone", "", "", "completed"): (1, 0),
    }
