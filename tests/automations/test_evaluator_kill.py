"""The kill test: an evaluator process SIGKILLed at random points while 2,000 events
arrive ends, after one clean run, with exactly the firings (and action effects) of a
single uninterrupted evaluation: none missed, none doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from _waiting import wait_until
from legato._event_records import Event
from legato.automations import service
from legato.automations.evaluator import Evaluator
from legato.client import Client
from legato.store.base import Store
from legato.store.sqlite import SQLiteStore

pytestmark = pytest.mark.usefixtures("backend")

T0 = datetime(2030, 1, 1, tzinfo=UTC)
EVENTS = 2000
CHUNK = 100  # events emitted between two kills

FIRED = {
    "type": "emit-event",
    "event": "kill.fired",
    "resource": {"legato.resource.id": "kill.{{ firing.id }}"},
    "payload": {"automation": "{{ automation.name }}"},
}
AUTOMATIONS = f"""
- name: every-third-placed
  trigger: {{expect: [shop.order.placed], for_each: [shop.group], threshold: 3}}
  actions: [{FIRED}]
- name: kind-x
  trigger: {{expect: ["shop.*"], match: {{shop.kind: x}}}}
  actions: [{FIRED}]
- name: pairs-within-10s
  trigger: {{expect: ["shop.order.*"], for_each: [shop.group], threshold: 2, within: 10}}
  actions: [{FIRED}]
"""


def make_events() -> list[Event]:
    rng = random.Random(12)
    return [
        Event(
            id=uuid.UUID(int=rng.getrandbits(128)).hex,
            event="shop.order.placed" if n % 3 else "shop.order.paid",
            occurred=T0 + timedelta(seconds=n + rng.random() * 3),
            resource={
                "legato.resource.id": f"shop.order.{n}",
                "shop.group": str(rng.randrange(7)),
                "shop.kind": "x" if rng.random() < 0.2 else "y",
            },
        )
        for n in range(EVENTS)
    ]


def outcome(store: Store) -> dict[str, Counter[str]]:
    """Per automation, how many firings each bucket had."""
    found = {}
    for stored in store.list_automations():
        firings = store.list_firings(stored.id, limit=100_000)
        assert all(a.state == "done" for f in firings for a in f.actions)
        found[stored.name] = Counter(f.bucket_key for f in firings)
    return found


def fired_events(store: Store) -> int:
    return len(store.list_events(names=["kill.fired"], limit=100_000))


def test_a_killed_evaluator_neither_misses_nor_repeats_a_firing(
    default_store: Store, tmp_path: Path
) -> None:
    events = make_events()
    # The reference: one uninterrupted evaluation of the same automations and events.
    reference = SQLiteStore(tmp_path / "reference.db")
    service.apply(reference, service.load_yaml(AUTOMATIONS))
    reference.emit_events(events)
    Evaluator(Client(reference), batch=50).run_until_caught_up()
    expected = outcome(reference)
    assert sum(sum(c.values()) for c in expected.values()) > 500

    store = default_store
    service.apply(store, service.load_yaml(AUTOMATIONS))
    command = [sys.executable, "-m", "legato", "automation", "run-evaluator"]
    rng = random.Random()
    kills = 0
    for start in range(0, EVENTS, CHUNK):
        for at in range(start, start + CHUNK, 10):
            store.emit_events(events[at : at + 10])
        before = store.get_evaluator_cursor("default")
        process = subprocess.Popen(
            [*command, "--interval", "0.01", "--batch", "50"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
        try:
            # Kill it somewhere in the middle of its work: once it has committed a
            # step, after a random number of further commits.
            wait_until(
                lambda before=before: store.get_evaluator_cursor("default") != before,
                timeout=60,
                what="the evaluator's first commit",
            )
            for _ in range(rng.randrange(3)):
                seen = store.get_evaluator_cursor("default")
                wait_until(
                    lambda seen=seen, process=process: (
                        store.get_evaluator_cursor("default") != seen or process.poll() is not None
                    ),
                    timeout=60,
                )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        kills += 1
    final = subprocess.run(
        [*command, "--once"], capture_output=True, text=True, env=os.environ.copy(), timeout=120
    )
    assert final.returncode == 0, final.stderr
    assert kills == EVENTS // CHUNK
    assert outcome(store) == expected
    total = sum(sum(c.values()) for c in expected.values())
    assert fired_events(store) == total == fired_events(reference)
    reference.close()
