"""`legato.testing.virtual_clock`: sleeps, retry delays, pause timeouts, deadlines and
schedules read a clock the test moves, and the store records virtual times."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import legato
from legato import Deadline, flow, pause_flow_run, task
from legato.client import Client
from legato.engine.flow_engine import create_flow_run
from legato.errors import ConfigurationError, FlowPaused
from legato.records import utcnow
from legato.schedules import make_schedule
from legato.states import StateType
from legato.store import get_default_store
from legato.testing import virtual_clock
from legato.worker.scheduler import Scheduler
from legato.worker.sweeps import DEADLINE_MISSED, Sweeper

pytestmark = pytest.mark.usefixtures("backend")

START = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
CALLS: list[datetime] = []


@task(retries=3, retry_delay_seconds=600)
def flaky() -> str:
    CALLS.append(utcnow())
    if len(CALLS) < 4:
        raise RuntimeError(f"attempt {len(CALLS)} fails")
    return "done"


@flow
def patient() -> str:
    legato.sleep(timedelta(days=1))
    return flaky()


@flow
def approval() -> str:
    pause_flow_run(timeout=3600)
    return "approved"


@flow(deadlines=[Deadline(within=timedelta(hours=1))])
def watched() -> int:
    return 1


def test_a_day_of_sleep_and_three_retries_run_in_virtual_time() -> None:
    CALLS.clear()
    began = time.monotonic()
    with virtual_clock(START) as clock:
        assert patient() == "done"
        assert clock.now() >= START + timedelta(days=1, minutes=30)
    assert time.monotonic() - began < 20  # it did not really sleep a day
    [run] = Client().list_runs()
    assert run.state is StateType.COMPLETED
    assert run.start_time is not None and run.end_time is not None
    # (PostgreSQL's store clock adds the server's measured offset: a few milliseconds)
    assert START - timedelta(seconds=1) <= run.start_time < START + timedelta(minutes=1)
    assert run.end_time < START + timedelta(days=2)
    # Virtual time moves only in jumps; PostgreSQL's offset may shift a record by microseconds.
    assert run.end_time - run.start_time >= timedelta(days=1, minutes=30, seconds=-1)
    [task_run] = get_default_store().list_task_runs(run.id)
    assert task_run.attempts == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(CALLS)]
    assert len(gaps) == 3 and all(gap >= timedelta(minutes=10) for gap in gaps)
    assert CALLS[0] >= START + timedelta(days=1)


ASYNC_CALLS: list[datetime] = []


@task(retries=2, retry_delay_seconds=3600)
async def flaky_async() -> str:
    ASYNC_CALLS.append(utcnow())
    if len(ASYNC_CALLS) < 3:
        raise RuntimeError(f"attempt {len(ASYNC_CALLS)} fails")
    return "done"


@flow
async def patient_async() -> str:
    return await flaky_async()


def test_async_retry_delays_wait_on_the_virtual_clock() -> None:
    ASYNC_CALLS.clear()
    began = time.monotonic()
    with virtual_clock(START) as clock:
        assert asyncio.run(patient_async()) == "done"
        assert clock.now() >= START + timedelta(hours=2)
    assert time.monotonic() - began < 20
    assert ASYNC_CALLS[2] - ASYNC_CALLS[0] >= timedelta(hours=2)


def test_without_auto_time_moves_only_on_advance() -> None:
    done = threading.Event()

    def sleeper() -> None:
        legato.sleep(3600)  # outside a flow: a plain sleep, on the virtual clock
        done.set()

    with virtual_clock(START, auto=False) as clock:
        thread = threading.Thread(target=sleeper)
        thread.start()
        assert not done.wait(0.2)  # an hour of virtual time has not passed
        clock.advance(minutes=59)
        assert not done.wait(0.1)
        assert clock.advance(minutes=1) == START + timedelta(hours=1)
        assert done.wait(10)
        thread.join()
    with pytest.raises(ConfigurationError, match="forward"), virtual_clock(auto=False) as clock:
        clock.advance(seconds=-1)


def test_advance_lets_a_paused_runs_timeout_lapse() -> None:
    with virtual_clock(START, auto=False) as clock:
        with pytest.raises(FlowPaused):
            approval()
        store = get_default_store()
        [run] = Client().list_runs()
        assert run.pause is not None and run.pause.timeout_at == START + timedelta(hours=1)
        assert Sweeper(store, lease=30).sweep_pause_timeouts() == 0
        clock.advance(minutes=61)
        assert Sweeper(store, lease=30).sweep_pause_timeouts() == 1
    after = store.get_flow_run(run.id)
    assert after is not None and after.state is StateType.FAILED


def test_a_deadline_fires_on_advance() -> None:
    with virtual_clock(START, auto=False) as clock:
        store = get_default_store()
        run = create_flow_run(watched, store, {})  # never started
        assert Sweeper(store, lease=30).sweep_deadlines() == 0
        clock.advance(minutes=59)
        assert Sweeper(store, lease=30).sweep_deadlines() == 0
        clock.advance(minutes=2)
        assert Sweeper(store, lease=30).sweep_deadlines() == 1
    [missed] = store.list_events(
        names=[DEADLINE_MISSED], resource_id=f"legato.flow-run.{run.id}", limit=10
    )
    assert START + timedelta(hours=1) <= missed.occurred < START + timedelta(hours=2)


def test_schedules_follow_the_virtual_clock(tmp_path: Path) -> None:
    path = tmp_path / "hourly_flows.py"
    path.write_text("from legato import flow\n\n\n@flow\ndef hourly() -> int:\n    return 1\n")
    with virtual_clock(START, auto=False) as clock:
        client = Client()
        client.deploy(f"{path}:hourly", name="hourly", schedules=[make_schedule(interval=3600)])
        deployment = client.get_deployment("hourly")
        [first, *_] = client.next_scheduled_times(deployment, 3)
        assert START < first <= START + timedelta(hours=1)
        scheduler = Scheduler(client, holder="w1", lease=30)
        assert scheduler.tick() == 0  # no slot due within seconds of the virtual now
        clock.advance(hours=5)
        [later, *_] = client.next_scheduled_times(deployment, 3)
        assert START + timedelta(hours=5) < later <= START + timedelta(hours=6)
        scheduler._next_tick = 0  # tick now
        assert scheduler.tick() >= 1
        slots = [
            run.scheduled_time
            for run in client.list_runs(deployment="hourly", limit=100)
            if run.scheduled_time is not None
        ]
    # Without catchup, the latest missed slot runs: the one at the virtual 14:00.
    assert slots == [START + timedelta(hours=5)]


def test_leaving_the_block_restores_real_time() -> None:
    with virtual_clock(START) as clock:
        assert utcnow() == clock.now() == START
        assert get_default_store().clock() < START + timedelta(seconds=5)
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=5)
    assert abs(get_default_store().clock() - datetime.now(UTC)) < timedelta(seconds=5)
