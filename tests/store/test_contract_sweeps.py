"""Sweeps contract: late scheduled runs by due time; deadlines armed when their
reference time is known, disarmed when the run ends, fired once (compare-and-set)
with their event in the same transaction, on every backend."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from test_contract import at, make_owner, make_run, started

from legato._event_records import Event
from legato.deadlines import RunDeadline
from legato.records import FlowRun
from legato.states import StateType as S
from legato.store.base import Store

NAME = "legato.flow-run.deadline-missed"


def deadline(
    run: FlowRun,
    index: int = 0,
    *,
    reference: str = "scheduled",
    action: str = "alert",
    due_at: datetime | None = None,
) -> RunDeadline:
    return RunDeadline(
        run_id=run.id,
        index=index,
        reference=reference,
        within_seconds=60.0,
        action=action,
        due_at=due_at,
    )


def missed(run: FlowRun, index: int = 0) -> Event:
    return Event(
        id=f"dl-{run.id}-{index}",
        event=NAME,
        occurred=at(100),
        resource={"legato.resource.id": f"legato.flow-run.{run.id}"},
    )


def missed_events(store: Store) -> list[Event]:
    return store.list_events(names=[NAME], limit=1000)


def test_late_runs_are_scheduled_runs_past_due_earliest_first(store: Store) -> None:
    late2 = make_run(state=S.SCHEDULED, work_queue="q", scheduled_time=at(20))
    late1 = make_run(state=S.SCHEDULED, work_queue="q", scheduled_time=at(10))
    future = make_run(state=S.SCHEDULED, work_queue="q", scheduled_time=at(500))
    for run in (late2, late1, future):
        store.create_flow_run(run)
    running, _ = started(store, state=S.SCHEDULED, work_queue="q", scheduled_time=at(5))
    found = store.list_late_runs(due_before=at(100))
    assert [r.id for r in found] == [late1.id, late2.id]
    assert [r.id for r in store.list_late_runs(due_before=at(100), due_after=at(15))] == [late2.id]
    assert [r.id for r in store.list_late_runs(due_before=at(100), limit=1)] == [late1.id]
    assert running.id not in {r.id for r in store.list_late_runs(due_before=at(1000))}


def test_a_scheduled_deadline_fires_once_with_its_event(store: Store) -> None:
    run = make_run()
    store.create_flow_run(run)
    store.add_run_deadlines([deadline(run, due_at=at(60))])
    store.add_run_deadlines([deadline(run, due_at=at(999))])  # kept as it was
    assert store.due_deadlines(now=at(59)) == []
    [due] = store.due_deadlines(now=at(60))
    assert (due.run_id, due.index, due.due_at, due.fired_at) == (run.id, 0, at(60), None)
    assert store.fire_deadline(run.id, 0, now=at(61), event=missed(run)) is True
    assert store.fire_deadline(run.id, 0, now=at(62), event=missed(run)) is False
    assert [e.id for e in missed_events(store)] == [f"dl-{run.id}-0"]
    [row] = store.list_run_deadlines(run.id)
    assert row.fired_at == at(61)
    assert store.due_deadlines(now=at(1000)) == []


def test_a_started_deadline_is_armed_by_the_start(store: Store) -> None:
    run = make_run()
    store.create_flow_run(run)
    store.add_run_deadlines([deadline(run, reference="started")])
    assert store.list_run_deadlines(run.id)[0].due_at is None
    assert store.due_deadlines(now=at(10_000)) == []
    store.start_flow_run(run.id, make_owner(), from_states=[S.PENDING], now=at(1))
    [row] = store.list_run_deadlines(run.id)
    assert row.due_at == at(61)
    assert [d.run_id for d in store.due_deadlines(now=at(61))] == [run.id]


def test_a_run_that_ends_disarms_its_deadlines(store: Store) -> None:
    running, owner = started(store)
    store.add_run_deadlines([deadline(running, due_at=at(60))])
    store.finish_flow_run(running.id, owner.token, state=S.COMPLETED, now=at(2))
    assert store.due_deadlines(now=at(1000)) == []
    assert store.fire_deadline(running.id, 0, now=at(1000), event=missed(running)) is False
    assert missed_events(store) == []
    assert store.list_run_deadlines(running.id)[0].fired_at is None


def test_a_deleted_run_takes_its_deadlines_along(store: Store) -> None:
    running, owner = started(store)
    store.add_run_deadlines([deadline(running, due_at=at(60))])
    store.finish_flow_run(running.id, owner.token, state=S.COMPLETED, now=at(2))
    store.prune_flow_runs(
        finished_before=datetime.now(UTC) + timedelta(days=1), states=[S.COMPLETED]
    )
    assert store.list_run_deadlines(running.id) == []


def test_a_cancel_deadline_cancels_the_run_in_the_same_call(store: Store) -> None:
    waiting = make_run()
    store.create_flow_run(waiting)
    running, _ = started(store)
    for run in (waiting, running):
        store.add_run_deadlines([deadline(run, action="cancel", due_at=at(60))])
        assert store.fire_deadline(run.id, 0, now=at(61), event=missed(run))
    assert store.get_flow_run(waiting.id).state is S.CANCELLED  # type: ignore[union-attr]
    after = store.get_flow_run(running.id)
    assert after is not None and after.state is S.RUNNING and after.cancel_requested


def test_racing_firings_fire_once(store: Store) -> None:
    runs = [make_run() for _ in range(20)]
    for run in runs:
        store.create_flow_run(run)
        store.add_run_deadlines([deadline(run, due_at=at(60))])
    wins: list[bool] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        barrier.wait()
        for run in runs:
            wins.append(store.fire_deadline(run.id, 0, now=at(61), event=missed(run)))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == len(runs)
    assert len(missed_events(store)) == len(runs)
