"""Coordination contract: claiming queued runs, leases, notifications, on every backend.

Through the abstract API only, like test_contract.py; the multi-process tests
open the same database from other interpreters by its URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from _waiting import release_together, running_in, wait_until
from legato.errors import ConfigurationError, RunOwnershipLost
from legato.records import FlowRun, Notification, RunOwner, TaskRun, WorkerInfo
from legato.states import StateType
from legato.store import open_store
from legato.store.base import Store
from legato.store.notifications import RUNS_QUEUED
from postgres_server import PostgresServer, require_server

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
S = StateType
LEASE = 30.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def queued(queue: str = "default", **changes: Any) -> FlowRun:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "flow_name": "etl",
        "name": "queued-run",
        "state": S.SCHEDULED,
        "created": T0,
        "work_queue": queue,
    }
    fields.update(changes)
    return FlowRun(**fields)


def owner(name: str = "worker-a") -> RunOwner:
    return RunOwner(token=f"{name}-{uuid.uuid4().hex}", host=name, pid=1000, pid_started=12.5)


def claim(store: Store, who: RunOwner, seconds: float = 0, *queues: str) -> FlowRun | None:
    return store.claim_flow_run(
        list(queues or ("default",)), who, now=at(seconds), lease_seconds=LEASE
    )


# --- queued runs ------------------------------------------------------------------


def test_a_queued_run_is_stored_with_its_queue_priority_and_due_time(store: Store) -> None:
    due = at(90)
    store.create_flow_run(queued("etl", priority=5, scheduled_time=due))
    store.create_flow_run(plain := queued("etl"))
    runs = {run.scheduled_time: run for run in store.list_flow_runs()}
    assert runs[due].work_queue == "etl" and runs[due].priority == 5
    # Without a scheduled time a queued run is due when it was created.
    assert store.get_flow_run(plain.id).scheduled_time == T0  # type: ignore[union-attr]


def test_a_run_started_in_process_has_no_queue(store: Store) -> None:
    run = queued(state=S.PENDING, work_queue=None)
    store.create_flow_run(run)
    stored = store.get_flow_run(run.id)
    assert stored is not None
    assert (stored.work_queue, stored.priority, stored.scheduled_time) == (None, 0, None)


def test_claim_returns_none_when_nothing_is_queued(store: Store) -> None:
    assert claim(store, owner()) is None


def test_claim_takes_the_run_pending_under_its_owner(store: Store) -> None:
    run = queued()
    store.create_flow_run(run)
    who = owner()
    claimed = claim(store, who, 5)
    assert claimed is not None and claimed.id == run.id
    assert claimed.state is S.PENDING
    assert claimed.owner == who
    assert claimed.heartbeat_at == at(5)
    assert claimed.attempts == 0  # the executing process counts attempts when it starts
    assert store.get_flow_run(run.id) == claimed
    assert claim(store, owner("worker-b"), 6) is None  # taken: nobody else gets it


def test_claim_reads_only_the_queues_asked_for(store: Store) -> None:
    store.create_flow_run(gpu := queued("gpu"))
    store.create_flow_run(cpu := queued("cpu"))
    got = claim(store, owner(), 1, "gpu")
    assert got is not None and got.id == gpu.id
    assert claim(store, owner(), 1, "gpu") is None
    both = claim(store, owner(), 1, "gpu", "cpu")
    assert both is not None and both.id == cpu.id


def test_a_run_is_not_claimed_before_it_is_due(store: Store) -> None:
    store.create_flow_run(run := queued(scheduled_time=at(60)))
    assert claim(store, owner(), 59) is None
    got = claim(store, owner(), 60)
    assert got is not None and got.id == run.id


def test_claim_order_is_priority_then_due_time(store: Store) -> None:
    late_low = queued(name="late-low", scheduled_time=at(3))
    early_low = queued(name="early-low", scheduled_time=at(1))
    late_high = queued(name="late-high", scheduled_time=at(2), priority=10)
    early_high = queued(name="early-high", scheduled_time=at(0), priority=10)
    negative = queued(name="negative", scheduled_time=at(0), priority=-1)
    for run in (late_low, negative, early_low, late_high, early_high):
        store.create_flow_run(run)
    order = []
    while (got := claim(store, owner(), 10)) is not None:
        order.append(got.name)
    assert order == ["early-high", "late-high", "early-low", "late-low", "negative"]


def test_claim_order_is_priority_then_due_time_across_all_the_queues_asked_for(
    store: Store,
) -> None:
    # Each queue's best run is not the best overall: the order interleaves the queues.
    runs = [
        queued("a", name="a-low-early", scheduled_time=at(0)),
        queued("a", name="a-high-late", scheduled_time=at(5), priority=3),
        queued("b", name="b-high-early", scheduled_time=at(1), priority=3),
        queued("b", name="b-low-late", scheduled_time=at(2)),
        queued("c", name="c-top", scheduled_time=at(0), priority=9),  # a queue not asked for
        queued("b", name="b-not-due", scheduled_time=at(99), priority=50),
    ]
    for run in runs:
        store.create_flow_run(run)
    order = []
    while (got := claim(store, owner(), 10, "a", "b", "a")) is not None:  # a named twice
        order.append(got.name)
    assert order == ["b-high-early", "a-high-late", "a-low-early", "b-low-late"]


def test_a_lapsed_lease_among_many_queued_runs_is_claimed_in_its_priority_order(
    store: Store,
) -> None:
    for n in range(40):
        store.create_flow_run(queued(name=f"queued-{n}", scheduled_time=at(n % 7), priority=1))
    lapsed = queued(
        name="lapsed", state=S.RUNNING, owner=owner("gone"), heartbeat_at=at(0), priority=2
    )
    lapsed_low = queued(
        name="lapsed-low", state=S.RUNNING, owner=owner("gone"), heartbeat_at=at(0), priority=0
    )
    alive = queued(
        name="alive", state=S.RUNNING, owner=owner("alive"), heartbeat_at=at(95), priority=5
    )
    elsewhere = queued(
        "gpu", name="elsewhere", state=S.RUNNING, owner=owner("gone"), heartbeat_at=at(0)
    )
    for run in (lapsed, lapsed_low, alive, elsewhere):
        store.create_flow_run(run)
    order = []
    while (got := claim(store, owner(), 100)) is not None:
        order.append(got.name)
    # Lease 30 s: "alive" (heartbeat at 95 s) keeps its run; "elsewhere" is not in the queue.
    assert order[0] == "lapsed" and order[-1] == "lapsed-low"
    assert sorted(order[1:-1]) == sorted(f"queued-{n}" for n in range(40))
    assert len(order) == 42


def test_runs_not_waiting_in_a_queue_are_never_claimed(store: Store) -> None:
    unqueued = queued(work_queue=None)  # scheduled, but for nobody's queue
    stale_local = queued(
        work_queue=None, state=S.RUNNING, owner=owner("local"), heartbeat_at=at(-999)
    )
    finished = [
        queued(state=state, owner=owner("old"), heartbeat_at=at(-999))
        for state in (S.COMPLETED, S.FAILED, S.CRASHED, S.CANCELLED, S.PAUSED)
    ]
    for run in (unqueued, stale_local, *finished):
        store.create_flow_run(run)
    assert claim(store, owner(), 10_000) is None


# --- leases on runs: heartbeats, lapses, fencing ------------------------------------


def _task(run: FlowRun, key: str) -> TaskRun:
    return TaskRun(
        id=uuid.uuid4().hex,
        flow_run_id=run.id,
        call_key=key,
        task_name="load",
        name=key,
        state=S.COMPLETED,
        start_time=at(1),
        end_time=at(2),
    )


def test_a_run_whose_lease_lapsed_is_claimed_again_and_its_old_owner_is_fenced(
    store: Store,
) -> None:
    store.create_flow_run(run := queued())
    first, second = owner("worker-a"), owner("worker-b")
    assert claim(store, first, 0) is not None
    assert store.start_flow_run(run.id, first, from_states=[S.PENDING], now=at(1)) is not None
    done = _task(run, "load[0]")
    store.record_task_run(done, first.token)
    assert store.heartbeat_flow_run(run.id, first.token, at(10)).still_owner

    # Within the lease (last heartbeat at 10 s, lease 30 s) nobody can take it.
    assert claim(store, second, 39) is None
    taken = claim(store, second, 41)
    assert taken is not None and taken.id == run.id
    assert taken.state is S.PENDING and taken.owner == second
    assert taken.state_message is not None and "lease" in taken.state_message
    assert taken.attempts == 1  # the first owner's attempt stays counted

    # The first owner comes back: every write of its is refused.
    assert not store.heartbeat_flow_run(run.id, first.token, at(42)).still_owner
    with pytest.raises(RunOwnershipLost):
        store.record_task_run(_task(run, "load[1]"), first.token)
    with pytest.raises(RunOwnershipLost):
        store.finish_flow_run(run.id, first.token, state=S.COMPLETED, now=at(43))
    # What it finished before losing the run is kept for replay.
    assert store.find_task_run(run.id, "load[0]") == replace(done, has_result=False)
    assert store.find_task_run(run.id, "load[1]") is None
    # The new owner carries on.
    assert store.start_flow_run(run.id, second, from_states=[S.PENDING], now=at(44))
    store.finish_flow_run(run.id, second.token, state=S.COMPLETED, now=at(45))
    assert store.get_flow_run(run.id).state is S.COMPLETED  # type: ignore[union-attr]


def test_a_heartbeat_keeps_the_lease(store: Store) -> None:
    store.create_flow_run(run := queued())
    first = owner()
    claim(store, first, 0)
    for beat in range(20, 200, 20):
        assert store.heartbeat_flow_run(run.id, first.token, at(beat)).still_owner
        assert claim(store, owner("thief"), beat + 25) is None


def test_concurrent_claimers_in_threads_get_each_run_once(store: Store) -> None:
    runs = [queued(name=f"run-{n}", scheduled_time=at(n % 7)) for n in range(60)]
    for run in runs:
        store.create_flow_run(run)
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(6)

    def worker(name: str) -> None:
        who = owner(name)
        mine = claimed.setdefault(name, [])
        start.wait()
        while (got := claim(store, who, 10)) is not None:
            mine.append(got.id)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [run_id for ids in claimed.values() for run_id in ids]
    assert sorted(every) == sorted(run.id for run in runs)


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database other processes can open: a SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        path = tmp_path / "shared.db"
        open_store(str(path)).close()
        yield str(path)
        return
    server: PostgresServer = require_server()
    with server.database() as url:
        yield url


def test_claimers_in_separate_processes_get_each_run_once(
    store_target: str, tmp_path: Path
) -> None:
    store = open_store(store_target)
    now = datetime.now(UTC)
    runs = [queued("shared", created=now - timedelta(seconds=5)) for _ in range(120)]
    for run in runs:
        store.create_flow_run(run)
    worker = Path(__file__).with_name("_claim_worker.py")
    barrier = tmp_path / "barrier"  # every interpreter started before anyone claims
    barrier.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), store_target, "shared", str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    release_together(barrier, len(procs))
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    claimed = [run_id for out, _ in outputs for run_id in json.loads(out)]
    assert sorted(claimed) == sorted(run.id for run in runs)  # all of them, once each
    pending = [run for run in store.list_flow_runs(limit=200) if run.state is S.PENDING]
    assert len(pending) == len(runs)
    store.close()


# --- leases: leader election ---------------------------------------------------------


def test_a_free_lease_is_taken_and_others_are_refused(store: Store) -> None:
    lease = store.acquire_lease("scheduler", "a", now=at(0), ttl_seconds=10)
    assert lease is not None
    assert (lease.name, lease.holder, lease.generation) == ("scheduler", "a", 1)
    assert (lease.acquired_at, lease.expires_at) == (at(0), at(10))
    assert store.acquire_lease("scheduler", "b", now=at(5), ttl_seconds=10) is None
    assert store.get_lease("scheduler") == lease
    assert store.get_lease("nothing") is None


def test_the_holder_renews_its_lease_in_the_same_generation(store: Store) -> None:
    store.acquire_lease("scheduler", "a", now=at(0), ttl_seconds=10)
    renewed = store.acquire_lease("scheduler", "a", now=at(8), ttl_seconds=10)
    assert renewed is not None
    assert (renewed.generation, renewed.acquired_at, renewed.expires_at) == (1, at(0), at(18))
    assert store.acquire_lease("scheduler", "b", now=at(17), ttl_seconds=10) is None


def test_an_expired_lease_passes_to_the_next_holder_in_a_new_generation(store: Store) -> None:
    store.acquire_lease("scheduler", "a", now=at(0), ttl_seconds=10)
    taken = store.acquire_lease("scheduler", "b", now=at(10), ttl_seconds=10)
    assert taken is not None and (taken.holder, taken.generation) == ("b", 2)
    assert taken.acquired_at == at(10)
    # The old holder, back late, cannot renew: it must stop its duty.
    assert store.acquire_lease("scheduler", "a", now=at(11), ttl_seconds=10) is None


def test_release_frees_the_lease_at_once(store: Store) -> None:
    store.acquire_lease("scheduler", "a", now=at(0), ttl_seconds=60)
    assert not store.release_lease("scheduler", "b")  # not the holder
    assert store.acquire_lease("scheduler", "b", now=at(1), ttl_seconds=60) is None
    assert store.release_lease("scheduler", "a")
    taken = store.acquire_lease("scheduler", "b", now=at(1), ttl_seconds=60)
    assert taken is not None and taken.generation == 2  # generations never go back
    assert not store.release_lease("missing", "a")


def test_leases_are_independent_by_name(store: Store) -> None:
    assert store.acquire_lease("scheduler", "a", now=at(0), ttl_seconds=10)
    assert store.acquire_lease("janitor", "b", now=at(0), ttl_seconds=10)


def test_exactly_one_of_many_contenders_gets_the_lease(store: Store) -> None:
    winners: list[str] = []
    start = threading.Barrier(8)

    def contend(name: str) -> None:
        start.wait()
        if store.acquire_lease("scheduler", name, now=at(0), ttl_seconds=10) is not None:
            winners.append(name)

    threads = [threading.Thread(target=contend, args=(f"c{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(winners) == 1
    assert store.get_lease("scheduler").holder == winners[0]  # type: ignore[union-attr]


# --- change notification ---------------------------------------------------------------


def test_a_listener_wakes_on_a_notification(store: Store) -> None:
    with store.listen(["work_ready"]) as listener:
        store.notify("work_ready", "queue-a")
        assert listener.wait(10) == [Notification("work_ready", "queue-a")]
        assert listener.wait(0.05) == []  # each notification is delivered once


def test_a_listener_waiting_in_another_thread_wakes_when_notified(store: Store) -> None:
    received: list[list[Notification]] = []
    with store.listen(["work_ready"]) as listener:
        waiter = threading.Thread(target=lambda: received.append(listener.wait(30)))
        waiter.start()
        wait = type(listener).wait
        wait_until(lambda: running_in(waiter, wait), what="the waiter to block in wait")
        store.notify("work_ready")
        waiter.join(30)
    assert received == [[Notification("work_ready", "")]]


def test_wait_times_out_empty_and_ignores_other_channels(store: Store) -> None:
    with store.listen(["work_ready"]) as listener:
        assert listener.wait(0.05) == []
        store.notify("something_else", "x")
        store.notify("work_ready", "after it")  # had "x" got through, it would show here
        assert listener.wait(10) == [Notification("work_ready", "after it")]


def test_notifications_sent_before_listening_are_not_seen(store: Store) -> None:
    store.notify("work_ready", "old")
    with store.listen(["work_ready", "other"]) as listener:
        store.notify("other", "new")  # had "old" been seen, it would show here
        assert listener.wait(10) == [Notification("other", "new")]


def test_queueing_a_run_notifies_the_workers_of_its_queue(store: Store) -> None:
    with store.listen([RUNS_QUEUED]) as listener:
        store.create_flow_run(queued(state=S.PENDING, work_queue=None))  # not queued
        assert listener.wait(0.3) == []
        store.create_flow_run(queued("gpu"))
        assert listener.wait(10) == [Notification(RUNS_QUEUED, "gpu")]


def test_a_notification_from_another_process_wakes_the_listener(store_target: str) -> None:
    store = open_store(store_target)
    code = (
        "import sys; from legato.store import open_store; "
        "s = open_store(sys.argv[1]); s.notify('work_ready', 'from-child'); s.close()"
    )
    try:
        with store.listen(["work_ready"]) as listener:
            subprocess.run([sys.executable, "-c", code, store_target], check=True, timeout=60)
            assert listener.wait(10) == [Notification("work_ready", "from-child")]
    finally:
        store.close()


@pytest.mark.parametrize("channel", ["", "Upper", "has-dash", "1starts_with_digit", "x" * 64])
def test_a_bad_channel_name_is_a_clear_error(store: Store, channel: str) -> None:
    with pytest.raises(ConfigurationError, match="lowercase letters"):
        store.notify(channel)
    with pytest.raises(ConfigurationError, match="lowercase letters"):
        store.listen([channel])


def test_a_payload_over_the_limit_is_a_clear_error(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="too long"):
        store.notify("work_ready", "x" * 8000)
    with pytest.raises(ConfigurationError, match="at least one channel"):
        store.listen([])


# --- handing a claimed run to the process that executes it --------------------------


def test_a_claimed_run_starts_only_under_its_claim(store: Store) -> None:
    store.create_flow_run(run := queued())
    worker = owner("worker-a")
    claim(store, worker, 0)
    executor = replace(worker, pid=2000)  # the worker's child, carrying the claim token
    wrong = store.start_flow_run(
        run.id, executor, from_states=[S.PENDING], now=at(1), expected_owner_token="stale"
    )
    assert wrong is None
    started = store.start_flow_run(
        run.id, executor, from_states=[S.PENDING], now=at(1), expected_owner_token=worker.token
    )
    assert started is not None and started.state is S.RUNNING and started.owner == executor


def test_a_claim_taken_over_cannot_be_started_by_the_old_claimer(store: Store) -> None:
    store.create_flow_run(run := queued())
    first, second = owner("worker-a"), owner("worker-b")
    claim(store, first, 0)
    assert claim(store, second, LEASE + 1) is not None  # the first worker went quiet
    late = store.start_flow_run(
        run.id, first, from_states=[S.PENDING], now=at(LEASE + 2), expected_owner_token=first.token
    )
    assert late is None
    assert store.get_flow_run(run.id).owner == second  # type: ignore[union-attr]


def test_next_due_time_is_the_earliest_waiting_run_in_the_queues(store: Store) -> None:
    assert store.next_due_time(["default"]) is None
    store.create_flow_run(queued(scheduled_time=at(50)))
    store.create_flow_run(queued(scheduled_time=at(20)))
    store.create_flow_run(queued("other", scheduled_time=at(5)))
    assert store.next_due_time(["default"]) == at(20)
    assert store.next_due_time(["default", "other"]) == at(5)
    claim(store, owner(), 30)  # takes the one due at 20
    assert store.next_due_time(["default"]) == at(50)


# --- concurrency keys: at most N active runs per key ------------------------------


def test_runs_of_a_concurrency_key_are_claimed_up_to_its_limit(store: Store) -> None:
    limited = [
        queued(
            name=f"limited-{n}", scheduled_time=at(n), concurrency_key="d:x", concurrency_limit=2
        )
        for n in range(4)
    ]
    free = queued(name="free", scheduled_time=at(9))
    other = queued(name="other", scheduled_time=at(8), concurrency_key="d:y", concurrency_limit=1)
    for run in (*limited, free, other):
        store.create_flow_run(run)
    names = [claim(store, owner(), 10).name for _ in range(4)]  # type: ignore[union-attr]
    assert names == ["limited-0", "limited-1", "other", "free"]
    assert claim(store, owner(), 10) is None  # d:x has 2 active, d:y has 1
    # One of d:x ends: the next of d:x may go.
    assert store.transition_flow_run(
        limited[0].id, to_state=S.COMPLETED, from_states=[S.PENDING], now=at(11)
    )
    got = claim(store, owner(), 12)
    assert got is not None and got.name == "limited-2"
    assert claim(store, owner(), 12) is None


def test_racing_claimers_never_exceed_a_concurrency_limit(store: Store) -> None:
    for n in range(20):
        store.create_flow_run(
            queued(name=f"r{n}", scheduled_time=at(n % 5), concurrency_key="k", concurrency_limit=3)
        )
    for n in range(5):
        store.create_flow_run(queued(name=f"free{n}", scheduled_time=at(0)))
    claimed: list[FlowRun] = []
    start = threading.Barrier(8)

    def worker() -> None:
        who = owner()
        start.wait()
        while (got := claim(store, who, 10)) is not None:
            claimed.append(got)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    keyed = [run for run in claimed if run.concurrency_key == "k"]
    assert len(keyed) == 3
    assert len(claimed) == 3 + 5
    assert len({run.id for run in claimed}) == len(claimed)


# --- the worker registry ----------------------------------------------------------------


def _worker(worker_id: str, seen: float, **changes: Any) -> WorkerInfo:
    fields: dict[str, Any] = {
        "id": worker_id,
        "name": f"box-{worker_id}",
        "host": "box",
        "pid": 77,
        "queues": ("default", "gpu"),
        "concurrency": 4,
        "started": at(0),
        "heartbeat_at": at(seen),
    }
    fields.update(changes)
    return WorkerInfo(**fields)


def test_workers_report_and_are_listed_newest_first(store: Store) -> None:
    store.save_worker(_worker("a", 1))
    store.save_worker(_worker("b", 5, running=2))
    store.save_worker(_worker("a", 9, running=3))  # a heartbeat replaces the report
    listed = store.list_workers()
    assert [(w.id, w.heartbeat_at, w.running) for w in listed] == [("a", at(9), 3), ("b", at(5), 2)]
    assert listed[0] == _worker("a", 9, running=3)
    assert [w.id for w in store.list_workers(seen_since=at(6))] == ["a"]


def test_a_stopped_worker_says_so_and_old_ones_are_forgotten(store: Store) -> None:
    store.save_worker(_worker("a", 1))
    store.save_worker(_worker("b", 2))
    store.save_worker(_worker("b", 3, stopped_at=at(3)))
    assert store.list_workers()[0].stopped_at == at(3)
    assert store.delete_workers(seen_before=at(2)) == 1
    assert [w.id for w in store.list_workers()] == ["b"]
