"""Events contract: state changes write their events in the same transaction, emitted
events are stored once per id, read in an order that misses none, on every backend."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from test_contract import at, make_run, make_task, started

from legato._event_records import Event
from legato.errors import RunOwnershipLost, StoreError
from legato.records import ErrorInfo
from legato.states import StateType as S
from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def event(n: int, name: str = "shop.order.placed", **labels: str) -> Event:
    return Event(
        id=f"ev-{n:04d}",
        event=name,
        occurred=T0 + timedelta(seconds=n),
        resource={"legato.resource.id": f"shop.order.{n}", **labels},
        related=({"legato.resource.id": "shop.customer.ada", "legato.resource.role": "customer"},),
        payload={"n": n, "items": ["a", "b"]},
    )


def all_events(store: Store) -> list[Event]:
    batch = store.read_events(None, limit=10_000)
    return batch.events


def test_an_emitted_event_reads_back_equal(store: Store) -> None:
    one = event(1)
    [seq] = store.emit_events([one])
    assert isinstance(seq, int)
    got = store.get_event(one.id)
    assert got is not None
    assert got.seq == seq
    assert got.received is not None
    assert (got.id, got.event, got.occurred, got.follows) == (one.id, one.event, one.occurred, None)
    assert dict(got.resource) == dict(one.resource)
    assert [dict(r) for r in got.related] == [dict(r) for r in one.related]
    assert dict(got.payload) == {"n": 1, "items": ["a", "b"]}
    assert store.get_event("missing") is None


def test_an_event_id_seen_before_is_stored_once(store: Store) -> None:
    first = event(1)
    again = Event(
        id=first.id,
        event="shop.order.changed",
        occurred=T0,
        resource={"legato.resource.id": "other"},
    )
    seqs = store.emit_events([first, event(2)])
    assert store.emit_events([again, event(3)])[0] is None
    assert [e.id for e in all_events(store)] == ["ev-0001", "ev-0002", "ev-0003"]
    got = store.get_event(first.id)
    assert got is not None and got.event == "shop.order.placed" and got.seq == seqs[0]


def test_read_events_resumes_after_its_cursor_and_misses_none(store: Store) -> None:
    store.emit_events([event(n) for n in range(5)])
    first = store.read_events(None, limit=3)
    assert [e.id for e in first.events] == ["ev-0000", "ev-0001", "ev-0002"]
    second = store.read_events(first.cursor, limit=3)
    assert [e.id for e in second.events] == ["ev-0003", "ev-0004"]
    empty = store.read_events(second.cursor, limit=3)
    assert empty.events == [] and empty.cursor == second.cursor
    store.emit_events([event(5)])
    assert [e.id for e in store.read_events(second.cursor).events] == ["ev-0005"]


def test_events_cursor_starts_after_what_is_stored(store: Store) -> None:
    store.emit_events([event(1), event(2)])
    cursor = store.events_cursor()
    assert store.read_events(cursor).events == []
    store.emit_events([event(3)])
    assert [e.id for e in store.read_events(cursor).events] == ["ev-0003"]


def test_a_bad_cursor_is_a_clear_error(store: Store) -> None:
    with pytest.raises(StoreError, match="cursor"):
        store.read_events("not-a-cursor")


def test_concurrent_emitters_are_read_exactly_once(store: Store) -> None:
    """Writers on many threads while a reader follows its cursor: each event once."""
    stop = threading.Event()
    seen: list[str] = []

    def read_until_stopped() -> None:
        cursor = None
        while True:
            finished = stop.is_set()
            batch = store.read_events(cursor, limit=50)
            seen.extend(e.id for e in batch.events)
            cursor = batch.cursor
            if finished and not batch.events:
                return

    def emit(worker: int) -> None:
        for n in range(40):
            store.emit_events([event(worker * 1000 + n)])

    reader = threading.Thread(target=read_until_stopped)
    reader.start()
    writers = [threading.Thread(target=emit, args=(w,)) for w in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join(timeout=60)
    assert sorted(seen) == sorted(f"ev-{w * 1000 + n:04d}" for w in range(4) for n in range(40))


def test_list_events_filters_by_name_prefix_and_resource(store: Store) -> None:
    store.emit_events(
        [
            event(1, "shop.order.placed"),
            event(2, "shop.order.paid"),
            event(3, "shop_order_x"),  # "_" in a prefix is not a wildcard
            Event(
                id="ev-other",
                event="mail.sent",
                occurred=T0,
                resource={"legato.resource.id": "mail.1"},
            ),
        ]
    )
    ids = [e.id for e in store.list_events()]
    assert ids == ["ev-other", "ev-0003", "ev-0002", "ev-0001"]
    assert [e.id for e in store.list_events(names=["shop.order.*"])] == ["ev-0002", "ev-0001"]
    assert [e.id for e in store.list_events(names=["shop.order.paid", "mail.*"])] == [
        "ev-other",
        "ev-0002",
    ]
    assert [e.id for e in store.list_events(resource_id="shop.order.2")] == ["ev-0002"]
    assert len(store.list_events(resource_id="shop.customer.ada")) == 3  # related
    assert [e.id for e in store.list_events(limit=2)] == ["ev-other", "ev-0003"]
    newest = store.list_events(limit=2)
    older = store.list_events(before_seq=newest[-1].seq, limit=10)
    assert [e.id for e in older] == ["ev-0002", "ev-0001"]
    since = store.list_events(since=T0 + timedelta(seconds=2))
    assert [e.id for e in since] == ["ev-0003", "ev-0002"]
    until = store.list_events(until=T0 + timedelta(seconds=2))
    assert [e.id for e in until] == ["ev-other", "ev-0001"]


def test_prune_events_by_age(store: Store) -> None:
    store.emit_events([event(n) for n in range(5)])
    assert store.prune_events(received_before=datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.prune_events(received_before=datetime.now(UTC) + timedelta(seconds=5)) >= 5
    assert store.list_events(resource_id="shop.customer.ada") == []
    assert store.get_event("ev-0001") is None


# --- state changes ------------------------------------------------------------------------


def run_events(store: Store, run_id: str) -> list[Event]:
    return [e for e in all_events(store) if e.resource_id == f"legato.flow-run.{run_id}"]


def test_every_flow_run_state_change_writes_one_event(store: Store) -> None:
    run, owner = started(store, tags=("nightly",), work_queue="etl-queue")
    store.finish_flow_run(
        run.id,
        owner.token,
        state=S.FAILED,
        now=at(5),
        error=ErrorInfo(type="ValueError", message="bad row", traceback="tb"),
    )
    found = run_events(store, run.id)
    assert [e.event for e in found] == [
        "legato.flow-run.Pending",
        "legato.flow-run.Running",
        "legato.flow-run.Failed",
    ]
    failed = found[-1]
    assert failed.payload["from"] == "running" and failed.payload["to"] == "failed"
    assert failed.payload["error_type"] == "ValueError"
    assert failed.payload["error_message"] == "bad row"
    assert failed.resource["legato.resource.name"] == run.name
    roles = {r["legato.resource.role"]: r["legato.resource.id"] for r in failed.related}
    assert roles["flow"] == "legato.flow.etl"
    assert roles["work-queue"] == "legato.work-queue.etl-queue"
    assert roles["tag"] == "legato.tag.nightly"
    tagged = store.list_events(resource_id="legato.tag.nightly")
    assert {e.event for e in tagged} == {e.event for e in found}


def test_a_heartbeat_writes_no_event(store: Store) -> None:
    run, owner = started(store)
    before = len(run_events(store, run.id))
    store.heartbeat_flow_run(run.id, owner.token, at(3))
    assert len(run_events(store, run.id)) == before


def test_a_fenced_write_that_changes_nothing_writes_no_event(store: Store) -> None:
    run, owner = started(store)
    assert store.transition_flow_run(run.id, to_state=S.CRASHED, from_states=[S.RUNNING], now=at(4))
    before = [e.event for e in run_events(store, run.id)]
    assert before[-1] == "legato.flow-run.Crashed"
    with pytest.raises(RunOwnershipLost):
        store.finish_flow_run(run.id, owner.token, state=S.COMPLETED, now=at(5))
    assert [e.event for e in run_events(store, run.id)] == before


def test_failed_task_runs_write_events_and_completed_ones_do_not(store: Store) -> None:
    run, owner = started(store)
    ok = make_task(run, "extract[0]")
    bad = make_task(
        run,
        "load[0]",
        state=S.FAILED,
        tags=("db",),
        error=ErrorInfo(type="KeyError", message="'id'", traceback=None),
    )
    store.record_task_run(ok, owner.token)
    store.record_task_run(bad, owner.token)
    task_events = [e for e in all_events(store) if e.event.startswith("legato.task-run.")]
    assert [(e.event, e.resource_id) for e in task_events] == [
        ("legato.task-run.Failed", f"legato.task-run.{bad.id}")
    ]
    failed = task_events[0]
    assert failed.payload["error_type"] == "KeyError"
    assert set(failed.related_ids()) == {
        f"legato.flow-run.{run.id}",
        "legato.task.load",
        "legato.tag.db",
    }


def test_a_created_run_writes_its_first_state(store: Store) -> None:
    run = make_run(state=S.SCHEDULED, id=uuid.uuid4().hex)
    store.create_flow_run(run)
    [only] = run_events(store, run.id)
    assert only.event == "legato.flow-run.Scheduled"
    assert only.payload["from"] is None


# --- deployments and workers ---------------------------------------------------------------


def events_about(store: Store, resource_id: str) -> list[Event]:
    return [e for e in all_events(store) if e.resource_id == resource_id]


def test_deployment_changes_write_events(store: Store) -> None:
    from test_contract_deployments import deployment

    first = deployment("nightly")
    store.save_deployment(first, now=at(1))
    store.save_deployment(first, now=at(2))  # deployed again unchanged: no event
    store.advance_deployment_schedule("nightly", at(50))  # the horizon moves: no event
    store.save_deployment(replace(first, description="new"), now=at(3))
    store.set_deployment_paused("nightly", True, now=at(4))
    store.set_deployment_paused("nightly", True, now=at(5))  # no change: no event
    store.set_deployment_paused("nightly", False, now=at(6))
    store.delete_deployment("nightly")
    found = events_about(store, "legato.deployment.nightly")
    assert [e.event for e in found] == [
        "legato.deployment.created",
        "legato.deployment.updated",
        "legato.deployment.paused",
        "legato.deployment.resumed",
        "legato.deployment.deleted",
    ]
    assert found[0].related_ids("flow") == [f"legato.flow.{first.flow_name}"]
    assert found[0].related_ids("work-queue") == [f"legato.work-queue.{first.work_queue}"]


def test_a_worker_writes_started_and_stopped(store: Store) -> None:
    from legato.records import WorkerInfo

    worker = WorkerInfo(
        id="w-1",
        name="w",
        host="h",
        pid=7,
        queues=("etl", "default"),
        concurrency=2,
        started=at(1),
        heartbeat_at=at(1),
    )
    store.save_worker(worker)
    store.save_worker(replace(worker, heartbeat_at=at(2)))  # a heartbeat: no event
    store.save_worker(replace(worker, heartbeat_at=at(3), stopped_at=at(3)))
    store.save_worker(replace(worker, heartbeat_at=at(4), stopped_at=at(3)))
    found = events_about(store, "legato.worker.w-1")
    assert [e.event for e in found] == ["legato.worker.started", "legato.worker.stopped"]
    assert sorted(found[0].related_ids("work-queue")) == [
        "legato.work-queue.default",
        "legato.work-queue.etl",
    ]


def test_state_events_wake_listeners(store: Store) -> None:
    from legato.store.notifications import EVENTS_STORED

    with store.listen([EVENTS_STORED]) as listener:
        run, owner = started(store)
        assert listener.wait(10), "a flow run's state event woke no listener"
        store.record_task_run(
            make_task(run, "boom[0]", state=S.FAILED, error=ErrorInfo("E", "m", None)),
            owner.token,
        )
        assert listener.wait(10), "a failed task run's event woke no listener"
