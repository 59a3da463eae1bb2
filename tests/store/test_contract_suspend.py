"""Store contract: suspension requests (`request_pause`), on every backend."""

from __future__ import annotations

from test_contract import at, make_run, new_id, started

from legato.records import PauseInfo
from legato.states import StateType as S
from legato.store.base import Store


def test_a_pause_request_reaches_the_heartbeat_and_ends_with_running(store: Store) -> None:
    run, owner = started(store)
    assert not store.heartbeat_flow_run(run.id, owner.token, at(2)).pause_requested
    assert store.request_pause(run.id) is S.RUNNING
    reply = store.heartbeat_flow_run(run.id, owner.token, at(3))
    assert reply.still_owner and reply.pause_requested and not reply.cancel_requested

    # Pausing clears the request: resumed, the run does not pause again at once.
    store.pause_flow_run(run.id, owner.token, PauseInfo(key="suspended-1"), now=at(4))
    again = store.start_flow_run(run.id, owner, from_states=[S.PAUSED], now=at(5))
    assert again is not None
    assert not store.heartbeat_flow_run(run.id, owner.token, at(6)).pause_requested


def test_a_run_that_is_not_running_is_left_as_it_is(store: Store) -> None:
    queued = make_run(state=S.SCHEDULED)
    store.create_flow_run(queued)
    assert store.request_pause(queued.id) is S.SCHEDULED
    got = store.get_flow_run(queued.id)
    assert got is not None and got.state is S.SCHEDULED
    owner_run, owner = started(store)
    store.finish_flow_run(owner_run.id, owner.token, state=S.COMPLETED, now=at(3))
    assert store.request_pause(owner_run.id) is S.COMPLETED
    assert store.request_pause(new_id()) is None
    running = store.start_flow_run(queued.id, owner, from_states=[S.SCHEDULED], now=at(4))
    assert running is not None
    assert not store.heartbeat_flow_run(queued.id, owner.token, at(5)).pause_requested
