"""Deployments contract, and runs created once per idempotency key, on every backend."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from legato.records import CollisionStrategy, Deployment, FlowRun, Notification, Schedule
from legato.states import StateType
from legato.store.base import Store
from legato.store.notifications import RUNS_QUEUED

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
S = StateType


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def deployment(name: str = "nightly", **changes: Any) -> Deployment:
    fields: dict[str, Any] = {
        "name": name,
        "id": uuid.uuid4().hex,
        "flow_name": "etl",
        "entrypoint": "flows/etl.py:etl",
        "created": T0,
        "updated": T0,
    }
    fields.update(changes)
    return Deployment(**fields)


def slot_run(key: str, **changes: Any) -> FlowRun:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "flow_name": "etl",
        "name": "slot-run",
        "state": S.SCHEDULED,
        "created": T0,
        "work_queue": "default",
        "deployment": "nightly",
        "idempotency_key": key,
    }
    fields.update(changes)
    return FlowRun(**fields)


def test_a_deployment_round_trips_every_field(store: Store) -> None:
    full = deployment(
        parameters={"day": "2024-05-01", "limit": 10, "nested": {"a": [1, 2]}},
        schedules=(
            Schedule(cron="0 2 * * *", timezone="Europe/Paris"),
            Schedule(interval=90.5, anchor=at(0)),
            Schedule(rrule="FREQ=WEEKLY;BYDAY=MO"),
        ),
        work_queue="gpu",
        priority=3,
        tags=("etl", "nightly"),
        concurrency_limit=2,
        collision_strategy=CollisionStrategy.CANCEL_NEW,
        description="Loads yesterday's <orders>",
        catchup=True,
        timeout_seconds=90.5,
        retries=2,
        parameter_schema={
            "type": "object",
            "properties": {"zeta": {"type": "integer"}, "alpha": {"$ref": "#/$defs/Day"}},
            "required": ["zeta"],
            "additionalProperties": False,
            "$defs": {"Day": {"type": "string", "format": "date", "default": None}},
        },
    )
    stored = store.save_deployment(full, now=at(1))
    assert stored == replace(full, updated=at(1))
    assert store.get_deployment("nightly") == stored
    assert store.get_deployment("missing") is None
    # The schema keeps its key order (a form follows it).
    assert list(stored.parameter_schema or {}) == list(full.parameter_schema or {})
    assert list((stored.parameter_schema or {})["properties"]) == ["zeta", "alpha"]


def test_a_deployment_without_a_parameter_schema_keeps_none_and_a_new_version_replaces_it(
    store: Store,
) -> None:
    store.save_deployment(deployment(parameter_schema={"type": "object"}), now=at(0))
    replaced = store.save_deployment(deployment(parameter_schema=None), now=at(1))
    assert replaced.parameter_schema is None
    assert store.list_deployments()[0].parameter_schema is None


def test_saving_again_replaces_the_recipe_but_keeps_identity_pause_and_watermark(
    store: Store,
) -> None:
    first = store.save_deployment(deployment(parameters={"n": 1}), now=at(0))
    assert store.set_deployment_paused("nightly", True, now=at(1))
    store.advance_deployment_schedule("nightly", at(50))
    again = store.save_deployment(
        deployment(id="another-id", created=at(9), parameters={"n": 2}, work_queue="q2"),
        now=at(10),
    )
    assert again.id == first.id and again.created == first.created
    assert again.paused and again.scheduled_until == at(50)
    assert again.parameters == {"n": 2} and again.work_queue == "q2"
    assert again.updated == at(10)


def test_deployments_are_listed_by_name_and_deleted(store: Store) -> None:
    for name in ("zeta", "alpha", "mid"):
        store.save_deployment(deployment(name), now=at(0))
    assert [d.name for d in store.list_deployments()] == ["alpha", "mid", "zeta"]
    assert store.delete_deployment("mid")
    assert not store.delete_deployment("mid")
    assert [d.name for d in store.list_deployments()] == ["alpha", "zeta"]


def test_pause_and_resume(store: Store) -> None:
    store.save_deployment(deployment(), now=at(0))
    assert store.set_deployment_paused("nightly", True, now=at(1))
    assert store.get_deployment("nightly").paused  # type: ignore[union-attr]
    assert store.set_deployment_paused("nightly", False, now=at(2))
    assert not store.get_deployment("nightly").paused  # type: ignore[union-attr]
    assert not store.set_deployment_paused("missing", True, now=at(3))


def test_the_schedule_watermark_only_moves_forward(store: Store) -> None:
    store.save_deployment(deployment(), now=at(0))
    store.advance_deployment_schedule("nightly", at(100))
    store.advance_deployment_schedule("nightly", at(40))
    assert store.get_deployment("nightly").scheduled_until == at(100)  # type: ignore[union-attr]
    store.advance_deployment_schedule("nightly", at(160))
    assert store.get_deployment("nightly").scheduled_until == at(160)  # type: ignore[union-attr]


def test_a_run_is_created_once_per_idempotency_key(store: Store) -> None:
    first, created = store.create_flow_run_once(slot_run("nightly@2024-05-01T02:00"))
    assert created and first.deployment == "nightly"
    assert first.idempotency_key == "nightly@2024-05-01T02:00"
    again, created_again = store.create_flow_run_once(slot_run("nightly@2024-05-01T02:00"))
    assert not created_again and again == first
    other, created_other = store.create_flow_run_once(slot_run("nightly@2024-05-02T02:00"))
    assert created_other and other.id != first.id
    assert len(store.list_flow_runs()) == 2


def test_racing_creators_of_one_key_make_one_run(store: Store) -> None:
    results: list[tuple[FlowRun, bool]] = []
    start = threading.Barrier(8)

    def create() -> None:
        start.wait()
        results.append(store.create_flow_run_once(slot_run("nightly@slot-1")))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8
    assert sum(created for _, created in results) == 1
    assert len({run.id for run, _ in results}) == 1
    assert len(store.list_flow_runs()) == 1


def test_runs_are_listed_by_deployment(store: Store) -> None:
    mine, _ = store.create_flow_run_once(slot_run("a"))
    store.create_flow_run_once(slot_run("b", deployment="other"))
    store.create_flow_run(replace(slot_run("c"), id=uuid.uuid4().hex, deployment=None))
    assert [run.id for run in store.list_flow_runs(deployment="nightly")] == [mine.id]
    listed = store.list_flow_runs(deployment="nightly", states=[S.SCHEDULED, S.RUNNING])
    assert [run.id for run in listed] == [mine.id]


def test_a_queued_run_created_once_wakes_its_workers_once(store: Store) -> None:
    with store.listen([RUNS_QUEUED]) as listener:
        store.create_flow_run_once(slot_run("k", work_queue="gpu"))
        assert listener.wait(10) == [Notification(RUNS_QUEUED, "gpu")]
        store.create_flow_run_once(slot_run("k", work_queue="gpu"))  # exists: no news
        assert listener.wait(0.3) == []
