"""The automation evaluator: reactive and proactive triggers, buckets, idempotent actions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from _waiting import wait_until
from legato import flow
from legato._event_records import Event
from legato._orchestration_records import Deployment
from legato.automations import service
from legato.automations.evaluator import Evaluator
from legato.automations.model import parse_automation
from legato.client import Client
from legato.errors import InvalidAutomationError
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")

T0 = datetime(2030, 1, 1, tzinfo=UTC)
UPSTREAM_ID = "{{ event.resource['legato.resource.id'] | replace('legato.flow-run.', '') }}"


def apply(store: Store, **spec: Any) -> str:
    spec.setdefault("actions", [{"type": "pause-deployment", "deployment": "none"}])
    [(stored, _)] = service.apply(store, [parse_automation(spec)])
    return stored.id


def event(name: str, rid: str, seconds: float = 0, **labels: str) -> Event:
    return Event(
        id=uuid.uuid4().hex,
        event=name,
        occurred=T0 + timedelta(seconds=seconds),
        resource={"legato.resource.id": rid, **labels},
    )


def firings(store: Store, aid: str) -> list[str]:
    """The bucket keys of the firings, oldest first."""
    return [f.bucket_key for f in reversed(store.list_firings(aid, limit=10_000))]


def test_reactive_threshold_within_and_for_each(default_store: Store) -> None:
    store = default_store
    aid = apply(
        store,
        name="three-failures",
        trigger={
            "expect": ["shop.order.*"],
            "match": {"legato.resource.id": "shop.order.*"},
            "for_each": ["shop.region"],
            "threshold": 3,
            "within": 60,
        },
    )
    store.emit_events(
        [
            # eu: three within a minute -> fires
            *(
                event("shop.order.failed", "shop.order.1", s, **{"shop.region": "eu"})
                for s in (0, 10, 20)
            ),
            # us: two only
            *(
                event("shop.order.failed", "shop.order.2", s, **{"shop.region": "us"})
                for s in (0, 10)
            ),
            # ap: the third comes too late: its window restarts at 120 and fills at 140
            *(
                event("shop.order.failed", "shop.order.3", s, **{"shop.region": "ap"})
                for s in (0, 50, 120, 130)
            ),
            event("shop.order.failed", "other.thing", 1, **{"shop.region": "eu"}),  # label mismatch
            event("shop.cart.failed", "shop.order.4", 2, **{"shop.region": "eu"}),  # name mismatch
        ]
    )
    evaluator = Evaluator(Client(store))
    evaluator.run_until_caught_up()
    assert firings(store, aid) == ['["eu"]']
    store.emit_events([event("shop.order.failed", "shop.order.3", 140, **{"shop.region": "ap"})])
    evaluator.run_until_caught_up()
    assert firings(store, aid) == ['["eu"]', '["ap"]']
    [open_bucket] = store.list_buckets(aid)
    assert (open_bucket.key, open_bucket.count) == ('["us"]', 2)


def test_a_duplicated_event_id_fires_once(default_store: Store) -> None:
    store = default_store
    aid = apply(store, name="once", trigger={"expect": ["shop.paid"]})
    one = event("shop.paid", "shop.order.1")
    store.emit_events([one])
    store.emit_events([one, one])
    Evaluator(Client(store)).run_until_caught_up()
    assert len(firings(store, aid)) == 1


@flow
def healthy() -> int:
    return 1


def test_proactive_fires_for_the_missing_event_only(default_store: Store) -> None:
    store = default_store
    aid = apply(
        store,
        name="stuck-runs",
        trigger={
            "posture": "Proactive",
            "after": ["legato.flow-run.Running"],
            "expect": ["legato.flow-run.Completed"],
            "match_related": {
                "legato.resource.role": "flow",
                "legato.resource.id": "legato.flow.healthy",
            },
            "for_each": ["legato.resource.id"],
            "within": 1.5,
        },
    )
    for _ in range(200):
        assert healthy() == 1
    stuck = Event(
        id=uuid.uuid4().hex,
        event="legato.flow-run.Running",
        occurred=datetime.now(UTC),
        resource={"legato.resource.id": "legato.flow-run.stuck"},
        related=({"legato.resource.id": "legato.flow.healthy", "legato.resource.role": "flow"},),
    )
    store.emit_events([stuck])
    evaluator = Evaluator(Client(store))

    def fired() -> bool:
        evaluator.run_until_caught_up()
        return store.count_firings(aid) > 0

    wait_until(fired, timeout=30, what="the stuck run's firing")
    # Every healthy run's window was opened and closed by its own events: none is left
    # to expire later, and the one firing is the stuck run's.
    assert firings(store, aid) == ['["legato.flow-run.stuck"]']
    assert store.list_buckets(aid) == []
    report = service.explain(store, "stuck-runs")
    assert "only 0 of 1 expected" in report["firings"][0]["reason"]


def test_run_deployment_creates_one_run_when_executed_twice(default_store: Store) -> None:
    store = default_store
    store.save_deployment(
        Deployment(
            id=uuid.uuid4().hex,
            name="b",
            flow_name="b",
            entrypoint="flows.py:b",
            created=T0,
            updated=T0,
        ),
        now=T0,
    )
    aid = apply(
        store,
        name="b-after-a",
        trigger={"expect": ["legato.flow-run.Completed"]},
        actions=[
            {
                "type": "run-deployment",
                "deployment": "b",
                "parameters": {"upstream": UPSTREAM_ID},
            }
        ],
    )
    store.emit_events([event("legato.flow-run.Completed", "legato.flow-run.abc")])
    evaluator = Evaluator(Client(store))
    evaluator.evaluate()
    [row] = store.due_actions(store.clock())
    evaluator.run_action(row)  # the evaluator dies before recording it done...
    evaluator.run_action(row)  # ...and the next one runs it again
    runs = store.list_flow_runs(deployment="b")
    assert len(runs) == 1
    assert runs[0].parameters == {"upstream": "abc"}
    [firing] = store.list_firings(aid)
    assert firing.actions[0].state == "done"
    assert "created by an earlier attempt" in (firing.actions[0].result or "")


def test_a_failing_action_is_retried_then_kept_failed_with_its_error(default_store: Store) -> None:
    store = default_store
    aid = apply(
        store,
        name="bad-target",
        trigger={"expect": ["x.y"]},
        actions=[{"type": "run-deployment", "deployment": "missing"}],
    )
    store.emit_events([event("x.y", "x.1")])
    evaluator = Evaluator(Client(store))
    evaluator.evaluate()
    for _ in range(5):
        [row] = store.due_actions(store.clock() + timedelta(days=1))
        evaluator.run_action(row)
    assert store.due_actions(store.clock() + timedelta(days=1)) == []
    [firing] = store.list_firings(aid)
    action = firing.actions[0]
    assert (action.state, action.attempts) == ("failed", 5)
    assert "no deployment" in (action.result or "").lower() or "missing" in (action.result or "")


def test_explain_says_why_an_event_did_not_match(default_store: Store) -> None:
    store = default_store
    apply(store, name="eu-only", trigger={"expect": ["shop.*"], "match": {"shop.region": "eu"}})
    us = event("shop.paid", "shop.order.1", **{"shop.region": "us"})
    eu = event("shop.paid", "shop.order.2", **{"shop.region": "eu"})
    store.emit_events([us, eu])
    Evaluator(Client(store)).run_until_caught_up()
    missed = service.explain(store, "eu-only", event_id=us.id)["event"]
    assert not missed["matched"] and "shop.region='us'" in missed["why"]
    hit = service.explain(store, "eu-only", event_id=eu.id)
    assert hit["event"]["matched"] and len(hit["event"]["firings"]) == 1
    assert hit["firings"][0]["events"][0]["id"] == eu.id


def test_bad_specs_name_their_path() -> None:
    with pytest.raises(InvalidAutomationError, match=r"\[1\]\.trigger\.threshold"):
        service.load_yaml(
            "- {name: a, trigger: {}, actions: [{type: emit-event, event: x, resource: {}}]}\n"
            "- {name: b, trigger: {threshold: 0},"
            "   actions: [{type: pause-deployment, deployment: d}]}\n"
        )


def test_the_readme_example_is_a_valid_automations_file() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("# automations.yaml\n", 1)[1].split("```", 1)[0]
    names = [a.name for a in service.load_yaml(block)]
    assert names == ["report-after-extract", "stuck-etl"]


def test_compound_fires_when_enough_parts_fire_within_its_window(default_store: Store) -> None:
    store = default_store
    aid = apply(
        store,
        name="two-of-three",
        trigger={
            "type": "compound",
            "require": 2,
            "within": 60,
            "triggers": [{"expect": ["a"]}, {"expect": ["b"]}, {"expect": ["c"]}],
        },
    )
    c = event("c", "r", 130)  # with the b at 100: fires
    store.emit_events(
        [
            event("a", "r", 0),
            event("b", "r", 100),  # too late for the a at 0
            c,
            event("a", "r", 500),  # alone
            event("d", "r", 501),
        ]
    )
    Evaluator(Client(store)).run_until_caught_up()
    why = service.explain(store, "two-of-three", event_id=c.id)["event"]
    assert why["matched"] and why["role"] == "expected by trigger 2"
    d = store.list_events(names=["d"])[0]
    why = service.explain(store, "two-of-three", event_id=d.id)["event"]
    assert not why["matched"] and "trigger 0: event name 'd' is not one of ['a']" in why["why"]
    [fired] = store.list_firings(aid)
    assert "2 of its 3 triggers fired within 60s" in fired.reason
    assert len(fired.event_ids) == 2
    assert [b.key for b in store.list_buckets(aid)] == ["#0"]  # the last a waits


def test_sequence_fires_only_in_order(default_store: Store) -> None:
    store = default_store
    aid = apply(
        store,
        name="a-then-b",
        trigger={"type": "sequence", "triggers": [{"expect": ["a"]}, {"expect": ["b"]}]},
    )
    store.emit_events([event("b", "r", 0), event("a", "r", 1)])
    evaluator = Evaluator(Client(store))
    evaluator.run_until_caught_up()
    assert store.count_firings(aid) == 0  # b came before a
    store.emit_events([event("b", "r", 2)])
    evaluator.run_until_caught_up()
    [fired] = store.list_firings(aid)
    assert "fired in order" in fired.reason
    assert service.delete(store, "a-then-b") is None
    assert store.list_buckets(f"{aid}#0") == store.list_buckets(aid) == []


def test_a_proactive_trigger_over_a_thousand_healthy_runs_never_fires(
    default_store: Store,
) -> None:
    """1,000 runs whose Completed arrives within the window, many in a later write and a
    later evaluation batch than their Running: zero firings once every window has passed;
    then one run left without its Completed fires exactly once."""
    store = default_store
    within = 5.0  # far above a chunk's evaluation time, even on a loaded machine
    aid = apply(
        store,
        name="no-completion",
        trigger={
            "posture": "Proactive",
            "after": ["legato.flow-run.Running"],
            "expect": ["legato.flow-run.Completed"],
            "for_each": ["legato.resource.id"],
            "within": within,
        },
    )
    evaluator = Evaluator(Client(store))

    def state_event(name: str, n: int) -> Event:
        return Event(
            id=uuid.uuid4().hex,
            event=name,
            occurred=datetime.now(UTC),
            resource={"legato.resource.id": f"legato.flow-run.healthy-{n}"},
        )

    pending: list[Event] = []
    for chunk in range(10):
        started = [state_event("legato.flow-run.Running", chunk * 100 + i) for i in range(100)]
        # Each write holds this chunk's Running events and the previous chunk's Completed.
        store.emit_events([*pending, *started])
        pending = [state_event("legato.flow-run.Completed", chunk * 100 + i) for i in range(100)]
        evaluator.run_until_caught_up()
    store.emit_events(pending)
    last = datetime.now(UTC)
    evaluator.run_until_caught_up()
    wait_until(
        lambda: store.clock() > last + timedelta(seconds=within + 0.2),
        timeout=30,
        what="every window to pass",
    )
    evaluator.run_until_caught_up()
    assert store.count_firings(aid) == 0
    assert store.list_buckets(aid) == []

    store.emit_events([state_event("legato.flow-run.Running", 5000)])

    def fired() -> bool:
        evaluator.run_until_caught_up()
        return store.count_firings(aid) > 0

    wait_until(fired, timeout=30, what="the run without its Completed to fire")
    assert firings(store, aid) == ['["legato.flow-run.healthy-5000"]']
