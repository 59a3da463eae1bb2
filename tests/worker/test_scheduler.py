"""The scheduler: leadership, one run per slot, missed slots with and without catchup."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from legato.client import Client
from legato.records import Schedule, utcnow
from legato.schedules import make_schedule
from legato.states import StateType
from legato.worker import scheduler as scheduler_module
from legato.worker.scheduler import LEASE_NAME, LOOKAHEAD, Scheduler

pytestmark = pytest.mark.usefixtures("backend")

FLOWS = """
from legato import flow


@flow
def tick(label: str = "x") -> str:
    return label
"""


@pytest.fixture
def target(tmp_path: Path) -> str:
    path = tmp_path / "tick_flows.py"
    path.write_text(FLOWS)
    return f"{path}:tick"


def deploy_in_the_past(client: Client, target: str, name: str, *, catchup: bool) -> None:
    """A deployment last scheduled 10 minutes ago, with no scheduler since."""
    ten_minutes_ago = utcnow() - timedelta(minutes=10)
    schedule = make_schedule(interval=60, now=ten_minutes_ago)
    client.deploy(target, name=name, schedules=[schedule], catchup=catchup)
    client.store.advance_deployment_schedule(name, ten_minutes_ago)


def slot_runs(client: Client, name: str) -> list[tuple[float, StateType]]:
    runs = client.list_runs(deployment=name, limit=1000)
    return sorted((run.scheduled_time.timestamp(), run.state) for run in runs if run.scheduled_time)


def test_only_the_lease_holder_schedules(target: str) -> None:
    client = Client()
    client.deploy(target, name="every-second", schedules=[make_schedule(interval=1)])
    first = Scheduler(client, holder="w1", lease=30)
    second = Scheduler(client, holder="w2", lease=30)
    assert first.tick() > 0 and first.leading
    assert second.tick() == 0 and not second.leading
    lease = client.store.get_lease(LEASE_NAME)
    assert lease is not None and lease.holder == "w1"
    first.release()
    second._next_tick = 0  # tick now
    assert second.tick() >= 0 and second.leading


def test_a_slot_gets_one_run_however_often_the_scheduler_ticks(target: str) -> None:
    client = Client()
    client.deploy(target, name="every-second", schedules=[make_schedule(interval=1)])
    scheduler = Scheduler(client, holder="w1", lease=30)
    scheduler.tick()
    # A second leader that lost its lease without knowing it, racing the first:
    client.store.advance_deployment_schedule("every-second", utcnow() - timedelta(seconds=30))
    rogue = Scheduler(client, holder="w1", lease=30)
    rogue.tick()
    slots = [slot for slot, _ in slot_runs(client, "every-second")]
    assert len(slots) == len(set(slots)) > 0
    horizon = (utcnow() + LOOKAHEAD).timestamp()
    assert all(slot <= horizon + 1 for slot in slots)  # made only a little ahead


def test_without_catchup_only_the_latest_missed_slot_runs(target: str) -> None:
    client = Client()
    deploy_in_the_past(client, target, "hourly-ish", catchup=False)
    Scheduler(client, holder="w1", lease=30).tick()
    past = [slot for slot, _ in slot_runs(client, "hourly-ish") if slot <= utcnow().timestamp()]
    assert len(past) == 1


def test_with_catchup_every_missed_slot_runs(target: str) -> None:
    client = Client()
    deploy_in_the_past(client, target, "hourly-ish", catchup=True)
    Scheduler(client, holder="w1", lease=30).tick()
    past = [slot for slot, _ in slot_runs(client, "hourly-ish") if slot <= utcnow().timestamp()]
    assert len(past) == 10
    assert all(later - earlier == 60 for earlier, later in itertools.pairwise(past))


def test_a_paused_deployment_gets_no_new_runs(target: str) -> None:
    client = Client()
    client.deploy(target, name="paused", schedules=[make_schedule(interval=1)])
    client.pause_deployment("paused")
    assert Scheduler(client, holder="w1", lease=30).tick() == 0
    assert slot_runs(client, "paused") == []


@pytest.mark.parametrize(
    "bad",
    [
        Schedule(interval=1e20),  # what `--interval 1e20` stored before intervals were bounded
        Schedule(cron="0 0 31 2 *"),  # reads as cron; February 31st never comes
    ],
    ids=["huge-interval", "impossible-cron"],
)
def test_a_bad_stored_deployment_is_skipped_with_one_error(target: str, bad: Schedule) -> None:
    client = Client()
    client.deploy(target, name="good", schedules=[make_schedule(interval=1)])
    good = client.get_deployment("good")
    # Written straight through the store, as an older legato could have.
    client.store.save_deployment(replace(good, name="broken", schedules=(bad,)), now=utcnow())
    logged: list[str] = []
    scheduler = Scheduler(client, holder="w1", lease=30, log=logged.append)
    assert scheduler.tick() > 0
    scheduler._next_tick = 0  # tick again now
    scheduler.tick()
    assert slot_runs(client, "good") and slot_runs(client, "broken") == []
    errors = [line for line in logged if "'broken' skipped" in line]
    assert len(errors) == 1, logged  # once, not at every tick
    assert errors[0].startswith("error: ") and "\n" not in errors[0]


def test_a_long_gap_without_catchup_is_read_in_bounded_batches(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler_module, "SCAN_PER_TICK", 100)
    client = Client()
    long_ago = utcnow() - timedelta(minutes=20)  # 1,200 missed one-second slots
    client.deploy(target, name="every-second", schedules=[make_schedule(interval=1, now=long_ago)])
    client.store.advance_deployment_schedule("every-second", long_ago)
    # The scheduler's clock stands still: on a slow machine a one-second slot made
    # for the future would otherwise be in the past by the time it is counted.
    frozen = utcnow()
    monkeypatch.setattr(scheduler_module, "utcnow", lambda: frozen)
    scheduler = Scheduler(client, holder="w1", lease=30)
    for _ in range(40):
        scheduler._next_tick = 0
        scheduler.tick()
        until = client.get_deployment("every-second").scheduled_until
        if until is not None and until > frozen:
            break
    else:
        pytest.fail("the scheduler never read past the missed slots")
    past = [slot for slot, _ in slot_runs(client, "every-second") if slot <= frozen.timestamp()]
    assert len(past) == 1  # the latest missed slot only, however many batches it took
    assert past[0] > long_ago.timestamp() + 1000
