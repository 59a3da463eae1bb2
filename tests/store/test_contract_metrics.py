"""Metric reads contract: the flow runs that finished, or started, since a time
(found through their state events, an index walk); and what keeps the evaluator
cheap and prompt (the automations' version, the new-events notification); on
every backend."""

from __future__ import annotations

from test_contract import at, make_owner, make_run

from legato._event_records import RESOURCE_ID, Event
from legato.records import FlowRun, Notification
from legato.states import StateType as S
from legato.store.base import Store
from legato.store.notifications import EVENTS_STORED


def finished(store: Store, state: S, *, start: float, end: float, **changes: object) -> FlowRun:
    run = make_run(**changes)
    store.create_flow_run(run)
    owner = make_owner()
    assert store.start_flow_run(run.id, owner, from_states=[run.state], now=at(start))
    store.finish_flow_run(run.id, owner.token, state=state, now=at(end))
    done = store.get_flow_run(run.id)
    assert done is not None
    return done


def test_finished_runs_are_those_ended_since_latest_first(store: Store) -> None:
    old = finished(store, S.COMPLETED, start=1, end=5)
    failed = finished(store, S.FAILED, start=10, end=20, deployment="d", work_queue="q")
    crashed = finished(store, S.CRASHED, start=10, end=30, tags=("prod",))
    done = finished(store, S.COMPLETED, start=12, end=25)
    running = make_run()
    store.create_flow_run(running)
    assert store.start_flow_run(running.id, make_owner(), from_states=[S.PENDING], now=at(15))
    found = store.list_finished_runs(since=at(10))
    assert [r.id for r in found] == [crashed.id, done.id, failed.id]
    assert (found[2].state, found[2].deployment, found[2].work_queue) == (S.FAILED, "d", "q")
    assert found[0].tags == ("prod",)
    assert found[2].start_time == at(10) and found[2].end_time == at(20)
    assert [r.id for r in store.list_finished_runs(since=at(10), limit=1)] == [crashed.id]
    assert old.id in {r.id for r in store.list_finished_runs(since=at(0))}


def test_started_runs_are_scheduled_runs_started_since(store: Store) -> None:
    late = make_run(state=S.SCHEDULED, work_queue="q", scheduled_time=at(5))
    early = make_run(state=S.SCHEDULED, work_queue="q", scheduled_time=at(1))
    unscheduled = make_run()
    for run in (late, early, unscheduled):
        store.create_flow_run(run)
    assert store.start_flow_run(late.id, make_owner(), from_states=[S.SCHEDULED], now=at(50))
    assert store.start_flow_run(early.id, make_owner(), from_states=[S.SCHEDULED], now=at(2))
    assert store.start_flow_run(unscheduled.id, make_owner(), from_states=[S.PENDING], now=at(60))
    found = store.list_started_runs(since=at(10))
    assert [(r.id, r.scheduled_time, r.start_time) for r in found] == [(late.id, at(5), at(50))]
    assert [r.id for r in store.list_started_runs(since=at(0))] == [late.id, early.id]


def test_storing_new_events_notifies_the_leader(store: Store) -> None:
    def event(event_id: str) -> Event:
        return Event(id=event_id, event="x.y", occurred=at(0), resource={RESOURCE_ID: "x.1"})

    with store.listen([EVENTS_STORED]) as listener:
        store.emit_events([event("e1"), event("e2")])
        assert listener.wait(10) == [Notification(EVENTS_STORED, "")]
        store.emit_events([event("e1")])  # stored before: nothing new, no wake-up
        assert listener.wait(0.2) == []


def test_the_automations_version_changes_with_every_change(store: Store) -> None:
    seen = {store.automations_version()}
    store.save_automation("a1", "one", "{}", enabled=True, now=at(1))
    seen.add(store.automations_version())
    store.save_automation("a2", "two", "{}", enabled=True, now=at(2))
    seen.add(store.automations_version())
    store.save_automation("a1", "one", '{"changed": 1}', enabled=True, now=at(3))
    seen.add(store.automations_version())
    assert store.set_automation_enabled("two", False, now=at(4))
    seen.add(store.automations_version())
    assert store.delete_automation("one")
    seen.add(store.automations_version())
    assert len(seen) == 6
    assert store.automations_version() == store.automations_version()  # stable when idle
