"""Queueing deployment runs: concurrency keys, cancel_new, backfills (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legato.client import Client
from legato.engine.liveness import current_owner
from legato.errors import ConfigurationError, DeploymentNotFoundError
from legato.records import utcnow
from legato.schedules import make_schedule
from legato.states import StateType

pytestmark = pytest.mark.usefixtures("backend")

FLOWS = """
from legato import flow


@flow
def hello(name: str = "world") -> str:
    return f"hello {name}"
"""

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def target(tmp_path: Path) -> str:
    path = tmp_path / "hello_flows.py"
    path.write_text(FLOWS)
    return f"{path}:hello"


def test_runs_of_a_limited_deployment_carry_its_concurrency_key(target: str) -> None:
    client = Client()
    client.deploy(target, name="limited", concurrency_limit=2)
    run = client.trigger("limited")
    assert (run.concurrency_key, run.concurrency_limit) == ("deployment:limited", 2)
    client.deploy(target, name="free")
    assert client.trigger("free").concurrency_key is None


def test_cancel_new_cancels_a_run_that_arrives_at_the_limit(target: str) -> None:
    client = Client()
    client.deploy(target, name="single", concurrency_limit=1, collision_strategy="cancel_new")
    first = client.trigger("single")
    claimed = client.store.claim_flow_run(
        ["default"], current_owner("tok"), now=utcnow(), lease_seconds=30
    )
    assert claimed is not None and claimed.id == first.id  # first is now active
    second = client.trigger("single")
    assert second.state is StateType.CANCELLED
    assert second.state_message is not None and "cancel_new" in second.state_message
    assert client.store.get_flow_run(second.id).state is StateType.CANCELLED  # type: ignore[union-attr]


def test_enqueue_keeps_a_run_waiting_until_a_slot_frees(target: str) -> None:
    client = Client()
    client.deploy(target, name="single", concurrency_limit=1)
    first, second = client.trigger("single"), client.trigger("single")
    owner = current_owner("tok")
    got = client.store.claim_flow_run(["default"], owner, now=utcnow(), lease_seconds=30)
    assert got is not None and got.id == first.id
    assert client.store.claim_flow_run(["default"], owner, now=utcnow(), lease_seconds=30) is None
    assert client.store.get_flow_run(second.id).state is StateType.SCHEDULED  # type: ignore[union-attr]


def test_backfill_queues_one_run_per_slot_and_keeps_existing_ones(target: str) -> None:
    client = Client()
    client.deploy(target, name="hourly", schedules=[make_schedule(cron="0 * * * *")])
    queued = client.backfill("hourly", T0, T0 + timedelta(hours=3))
    times = [run.scheduled_time for run, _ in queued]
    assert times == [T0 + timedelta(hours=h) for h in range(4)]  # both ends included
    assert all(created for _, created in queued)
    assert all(
        run.idempotency_key == f"hourly@{run.scheduled_time.isoformat()}" for run, _ in queued
    )  # type: ignore[union-attr]
    again = client.backfill("hourly", T0 + timedelta(hours=2), T0 + timedelta(hours=5))
    assert [created for _, created in again] == [False, False, True, True]
    assert again[0][0].id == queued[2][0].id
    assert len(client.list_runs(deployment="hourly", limit=100)) == 6


def test_a_backfill_has_its_own_concurrency(target: str) -> None:
    client = Client()
    client.deploy(target, name="hourly", schedules=[make_schedule(cron="0 * * * *")])
    queued = client.backfill("hourly", T0, T0 + timedelta(hours=5), concurrency=2)
    keys = {run.concurrency_key for run, _ in queued}
    assert len(keys) == 1 and next(iter(keys), "").startswith("backfill:")  # type: ignore[union-attr]
    owner = current_owner("tok")
    claims = []
    while got := client.store.claim_flow_run(["default"], owner, now=utcnow(), lease_seconds=30):
        claims.append(got)
    assert [run.scheduled_time for run in claims] == [T0, T0 + timedelta(hours=1)]


def test_backfill_errors_say_what_to_do(target: str) -> None:
    client = Client()
    client.deploy(target, name="manual")
    with pytest.raises(ConfigurationError, match="no schedule"):
        client.backfill("manual", T0, T0 + timedelta(days=1))
    client.deploy(target, name="minutely", schedules=[make_schedule(cron="* * * * *")])
    with pytest.raises(ConfigurationError, match="before it starts"):
        client.backfill("minutely", T0, T0 - timedelta(days=1))
    with pytest.raises(ConfigurationError, match="more than 10,000 runs"):
        client.backfill("minutely", T0, T0 + timedelta(days=30))
    with pytest.raises(DeploymentNotFoundError, match="legato deployments"):
        client.backfill("missing", T0, T0)
    assert client.list_runs(deployment="minutely") == []
