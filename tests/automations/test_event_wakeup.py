"""The leading worker evaluates automations as soon as an event is stored (it wakes
on the store's new-events notification), not at its next scheduler tick."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest

from _waiting import wait_until
from legato._event_records import Event
from legato.automations import service
from legato.client import Client
from legato.store.base import Store
from legato.worker import scheduler
from legato.worker.worker import Worker

pytestmark = pytest.mark.usefixtures("backend")

SPEC = """
- name: echo
  trigger: {expect: [shop.paid]}
  actions:
    - type: emit-event
      event: shop.echoed
      resource: {legato.resource.id: "echo.{{ event.resource['legato.resource.id'] }}"}
"""


def test_a_stored_event_wakes_the_leader_between_ticks(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = default_store
    service.apply(store, service.load_yaml(SPEC))
    # One tick (it takes the lease and leads), the next an hour later: only the
    # notification can make this worker evaluate the event below.
    monkeypatch.setattr(scheduler, "TICK_SECONDS", 3600.0)
    evaluate = scheduler.Scheduler._evaluate_automations
    evaluated_once = threading.Event()

    def evaluate_and_tell(self: scheduler.Scheduler) -> None:
        evaluate(self)
        evaluated_once.set()

    monkeypatch.setattr(scheduler.Scheduler, "_evaluate_automations", evaluate_and_tell)
    worker = Worker(Client(store), poll_seconds=0.2, log=False)
    thread = threading.Thread(target=lambda: worker.run(install_signal_handlers=False))
    thread.start()
    try:
        wait_until(evaluated_once.is_set, timeout=30, what="the first tick's evaluation")
        paid = Event(
            id=uuid.uuid4().hex,
            event="shop.paid",
            occurred=datetime.now(UTC),
            resource={"legato.resource.id": "order.7"},
        )
        store.emit_events([paid])
        wait_until(
            lambda: store.list_events(names=["shop.echoed"]),
            timeout=30,
            what="the leader to evaluate the event before its next tick",
        )
        [echo] = store.list_events(names=["shop.echoed"])
        assert echo.resource_id == "echo.order.7"
    finally:
        worker.stop()
        thread.join(timeout=60)


def test_a_state_event_wakes_the_servers_leader_thread_between_ticks(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`legato server`'s leader thread listens too, and a flow run's own state event
    (written by a store trigger) wakes it."""
    from legato import flow
    from legato.worker.leader import Leader, LeaderThread

    store = default_store
    service.apply(
        store,
        service.load_yaml(
            SPEC.replace("[shop.paid]", "[legato.flow-run.Completed]").replace(
                "name: echo", "name: after-run"
            )
        ),
    )
    monkeypatch.setattr(scheduler, "TICK_SECONDS", 3600.0)
    evaluate = scheduler.Scheduler._evaluate_automations
    evaluated_once = threading.Event()

    def evaluate_and_tell(self: scheduler.Scheduler) -> None:
        evaluate(self)
        evaluated_once.set()

    monkeypatch.setattr(scheduler.Scheduler, "_evaluate_automations", evaluate_and_tell)
    leader = LeaderThread(Leader(Client(store), holder="server-test", lease=30), log=print)
    leader.start()
    try:
        wait_until(evaluated_once.is_set, timeout=30, what="the first tick's evaluation")

        @flow
        def quick() -> int:
            return 1

        assert quick() == 1
        wait_until(
            lambda: store.list_events(names=["shop.echoed"]),
            timeout=30,
            what="the leader thread to evaluate the run's Completed event before its next tick",
        )
    finally:
        leader.stop()
