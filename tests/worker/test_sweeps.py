"""The leader's sweeps: changes nobody makes (a dead process, a lapsed pause, a late
run, a missed deadline, a silent worker) made by the leader, so that their events
exist without anyone reading the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from _waiting import wait_until
from legato import Deadline, flow
from legato.client import Client
from legato.engine.flow_engine import create_flow_run
from legato.engine.liveness import hostname
from legato.records import FlowRun, PauseInfo, RunOwner, WorkerInfo, utcnow
from legato.states import StateType
from legato.store import get_default_store
from legato.store.base import Store
from legato.worker.scheduler import Scheduler
from legato.worker.sweeps import DEADLINE_MISSED, LATE, WORKER_OFFLINE, Sweeper

RID = "legato.resource.id"


def events(store: Store, name: str, resource_id: str | None = None) -> list[str]:
    found = store.list_events(names=[name], resource_id=resource_id, limit=1000)
    return [event.id for event in found]


def running_run(
    store: Store, *, host: str = "elsewhere", beat_age: float = 0.0, work_queue: str | None = None
) -> tuple[FlowRun, RunOwner]:
    run = FlowRun(
        id=uuid.uuid4().hex,
        flow_name="f",
        name="f-run",
        state=StateType.PENDING,
        work_queue=work_queue,
    )
    store.create_flow_run(run)
    owner = RunOwner(token=uuid.uuid4().hex, host=host, pid=4242, pid_started=None)
    started = store.start_flow_run(
        run.id,
        owner,
        from_states=[StateType.PENDING],
        now=store.clock() - timedelta(seconds=beat_age),
    )
    assert started is not None
    return started, owner


def clock_ahead(store: Store, monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    """The store's clock as the sweeper sees it, ``by`` ahead of now."""
    real = type(store).clock

    def later() -> datetime:
        return real(store) + by

    monkeypatch.setattr(store, "clock", later)


@flow(deadlines=[Deadline(within=timedelta(hours=1))])
def quick(x: int = 1) -> int:
    return x + 1


# --- both backends ----------------------------------------------------------------------


@pytest.mark.usefixtures("backend")
class TestSweepsOnEveryBackend:
    def test_a_lapsed_run_is_crashed_by_the_sweep_with_its_event(self) -> None:
        store = get_default_store()
        lapsed, _ = running_run(store, beat_age=60)
        fresh, _ = running_run(store, beat_age=0)
        queued, _ = running_run(store, beat_age=60, work_queue="q")
        assert Sweeper(store, lease=30).sweep().crashed == 1
        after = store.get_flow_run(lapsed.id)
        assert after is not None and after.state is StateType.CRASHED
        assert "no heartbeat from elsewhere" in (after.state_message or "")
        assert len(events(store, "legato.flow-run.Crashed", f"legato.flow-run.{lapsed.id}")) == 1
        assert store.get_flow_run(fresh.id).state is StateType.RUNNING  # type: ignore[union-attr]
        # A worker's run is left for another worker to take over (as a reader does).
        assert store.get_flow_run(queued.id).state is StateType.RUNNING  # type: ignore[union-attr]
        assert Sweeper(store, lease=30).sweep().crashed == 0

    def test_a_timed_out_pause_fails_by_the_sweep(self) -> None:
        store = get_default_store()
        run, owner = running_run(store)
        timeout = store.clock() - timedelta(seconds=1)
        store.pause_flow_run(
            run.id, owner.token, PauseInfo(key="approve", timeout_at=timeout), now=store.clock()
        )
        waiting, owner2 = running_run(store)
        later = store.clock() + timedelta(hours=1)
        store.pause_flow_run(
            waiting.id, owner2.token, PauseInfo(key="approve", timeout_at=later), now=later
        )
        assert Sweeper(store, lease=30).sweep().failed == 1
        after = store.get_flow_run(run.id)
        assert after is not None and after.state is StateType.FAILED
        assert after.error is not None and after.error.type == "PausedRunTimeoutError"
        assert len(events(store, "legato.flow-run.Failed", f"legato.flow-run.{run.id}")) == 1
        assert store.get_flow_run(waiting.id).state is StateType.PAUSED  # type: ignore[union-attr]

    def test_a_late_run_gets_one_late_event(self) -> None:
        store = get_default_store()
        now = store.clock()
        late = FlowRun(
            id=uuid.uuid4().hex,
            flow_name="etl",
            name="etl-late",
            state=StateType.SCHEDULED,
            work_queue="q",
            scheduled_time=now - timedelta(seconds=60),
            deployment="nightly",
            tags=("team-a",),
        )
        on_time = FlowRun(
            id=uuid.uuid4().hex,
            flow_name="etl",
            name="etl-soon",
            state=StateType.SCHEDULED,
            work_queue="q",
            scheduled_time=now - timedelta(seconds=5),
        )
        store.create_flow_run(late)
        store.create_flow_run(on_time)
        sweeper = Sweeper(store, lease=30, late_after=15)
        assert sweeper.sweep().late == 1
        [event] = store.list_events(names=[LATE])
        assert event.resource[RID] == f"legato.flow-run.{late.id}"
        assert set(event.related_ids()) == {
            "legato.flow.etl",
            "legato.deployment.nightly",
            "legato.work-queue.q",
            "legato.tag.team-a",
        }
        assert event.payload["late_after_seconds"] == 15
        # Again, by this sweeper and by a new leader: nothing more is stored.
        assert sweeper.sweep().late == 0
        assert Sweeper(store, lease=30, late_after=15).sweep().late == 0
        assert len(events(store, LATE)) == 1

    def test_a_silent_worker_is_offline_once_per_start(self) -> None:
        store = get_default_store()
        now = store.clock()

        def worker(wid: str, beat_age: float, started: datetime, **more: object) -> WorkerInfo:
            return WorkerInfo(
                id=wid,
                name=wid,
                host="h",
                pid=1,
                queues=("q",),
                concurrency=1,
                started=started,
                heartbeat_at=now - timedelta(seconds=beat_age),
                **more,  # type: ignore[arg-type]
            )

        first = now - timedelta(hours=1)
        store.save_worker(worker("gone", 60, first))
        store.save_worker(worker("alive", 1, first))
        store.save_worker(worker("stopped", 60, first, stopped_at=now - timedelta(seconds=60)))
        assert Sweeper(store, lease=30).sweep().offline == 1
        [event] = store.list_events(names=[WORKER_OFFLINE])
        assert event.resource[RID] == "legato.worker.gone"
        assert Sweeper(store, lease=30).sweep().offline == 0  # a new leader: stored once
        assert len(events(store, WORKER_OFFLINE)) == 1

    def test_healthy_runs_never_miss_their_deadlines(self, monkeypatch: pytest.MonkeyPatch) -> None:
        store = get_default_store()
        for i in range(200):
            assert quick(i) == i + 1
        assert len(store.list_flow_runs(limit=300, states=[StateType.COMPLETED])) == 200
        clock_ahead(store, monkeypatch, timedelta(hours=2))
        assert Sweeper(store, lease=30).sweep().deadlines == 0
        assert events(store, DEADLINE_MISSED) == []

    def test_a_missed_deadline_fires_once_with_racing_sweepers(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = get_default_store()
        runs = [create_flow_run(quick, store, {"x": i}) for i in range(20)]  # never started
        assert Sweeper(store, lease=30).sweep().deadlines == 0  # not due yet
        clock_ahead(store, monkeypatch, timedelta(hours=2))
        fired: list[int] = []
        barrier = threading.Barrier(2)

        def sweep() -> None:
            sweeper = Sweeper(store, lease=30)
            barrier.wait()
            fired.append(sweeper.sweep_deadlines())

        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(fired) == 20
        found = store.list_events(names=[DEADLINE_MISSED], limit=100)
        assert sorted(e.resource[RID] for e in found) == sorted(
            f"legato.flow-run.{run.id}" for run in runs
        )
        assert {e.payload["reference"] for e in found} == {"scheduled"}
        assert Sweeper(store, lease=30).sweep().deadlines == 0

    def test_a_cancel_deadline_cancels_the_run(self, monkeypatch: pytest.MonkeyPatch) -> None:
        store = get_default_store()
        strict = quick.with_options(
            deadlines=[Deadline(within=timedelta(minutes=5), action="cancel")]
        )
        run = create_flow_run(strict, store, {})
        clock_ahead(store, monkeypatch, timedelta(minutes=6))
        assert Sweeper(store, lease=30).sweep().deadlines == 1
        after = store.get_flow_run(run.id)
        assert after is not None and after.state is StateType.CANCELLED
        assert len(events(store, DEADLINE_MISSED, f"legato.flow-run.{run.id}")) == 1
        assert len(events(store, "legato.flow-run.Cancelled", f"legato.flow-run.{run.id}")) == 1


def test_only_the_leader_sweeps() -> None:
    client = Client()
    store = client.store
    lapsed, _ = running_run(store, beat_age=60)
    follower = Scheduler(client, holder="w2", lease=30)
    store.acquire_lease("legato-scheduler", "w1", now=utcnow(), ttl_seconds=30)
    follower.tick()
    assert store.get_flow_run(lapsed.id).state is StateType.RUNNING  # type: ignore[union-attr]
    store.release_lease("legato-scheduler", "w1")
    follower._next_tick = 0
    follower.tick()
    assert store.get_flow_run(lapsed.id).state is StateType.CRASHED  # type: ignore[union-attr]


# --- a real process killed, nobody reading ------------------------------------------------

FLOW = textwrap.dedent(
    """
    import time
    from pathlib import Path

    from legato import flow, task


    @task
    def stuck(marker: str) -> None:
        Path(marker).write_text("started")
        time.sleep(120)  # the test kills the process here


    @flow
    def victim(marker: str) -> None:
        stuck(marker)
    """
)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_sigkilled_flow_yields_its_crashed_event_with_nobody_reading(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    lease = 2.0
    env = {**os.environ, "LEGATO_LEASE_SECONDS": f"{lease:g}"}
    flows = tmp_path / "victim.py"
    flows.write_text(FLOW)
    marker = tmp_path / "marker"
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    leader = subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", "--queue", "none-here"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    log.close()
    procs.append(leader)
    victim = subprocess.Popen(
        [sys.executable, "-m", "legato", "run", f"{flows}:victim", "-p", f"marker={marker}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    procs.append(victim)
    wait_until(marker.exists, timeout=60, what="the flow's task to start")
    store = get_default_store()
    [run] = store.list_flow_runs(limit=5)
    resource = f"legato.flow-run.{run.id}"
    assert events(store, "legato.flow-run.Crashed", resource) == []
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    # Only events are read (never the run, whose reading would reconcile it).
    wait_until(
        lambda: events(store, "legato.flow-run.Crashed", resource),
        timeout=lease + 10,
        interval=0.1,
        what="the Crashed event, written by the leader's sweep",
    )
    [crashed] = store.list_events(names=["legato.flow-run.Crashed"])
    assert f"process {victim.pid} on {hostname()} exited" in crashed.payload["message"]
    assert "leading the scheduler" in (tmp_path / "worker.log").read_text()
