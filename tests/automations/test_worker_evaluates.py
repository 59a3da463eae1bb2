"""The worker that leads the scheduler evaluates automations: an event in, the
action's effect out, with no `run-evaluator` anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

from _waiting import wait_until
from legato._event_records import Event
from legato.automations import service
from legato.store.base import Store

SPEC = """
- name: echo
  trigger: {expect: [shop.paid], for_each: [legato.resource.id]}
  actions:
    - type: emit-event
      event: shop.echoed
      resource: {legato.resource.id: "echo.{{ event.resource['legato.resource.id'] }}"}
"""


def test_a_worker_evaluates_automations(default_store: Store) -> None:
    store = default_store
    service.apply(store, service.load_yaml(SPEC))
    worker = subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", "--lease-seconds", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    try:
        paid = Event(
            id=uuid.uuid4().hex,
            event="shop.paid",
            occurred=datetime.now(UTC),
            resource={"legato.resource.id": "order.7"},
        )
        store.emit_events([paid])
        wait_until(
            lambda: store.list_events(names=["shop.echoed"]),
            timeout=60,
            what="the worker's automation to emit its event",
        )
        [echo] = store.list_events(names=["shop.echoed"])
        assert echo.resource_id == "echo.order.7"
    finally:
        worker.terminate()
        worker.wait(timeout=60)
