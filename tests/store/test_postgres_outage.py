"""A PostgreSQL server that goes away: writes are retried, then the run ends as crashed
and resumes once the server is back. On a dedicated cluster these tests stop and
start (the session's shared server is left alone)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from _waiting import wait_until
from legato.errors import StoreUnavailableError
from legato.records import FlowRun, RunOwner, TaskRun
from legato.states import StateType
from legato.store.postgres import PostgresStore
from postgres_server import ServerUnavailable, ThrowawayCluster, find_bindir

FLOW = """
import os
import signal
import time
from legato import flow, task


def note(text):
    with open(os.environ["SIDE_EFFECTS"], "a") as f:
        f.write(text + "\\n")


@task
def step(name: str, seconds: float = 0.0) -> str:
    if seconds:
        note(name + " started")
        time.sleep(seconds)
    note(name)
    return name


@flow
def outage(slow: float = 3.0) -> list:
    return [step("a"), step("b", slow), step("c")]
"""


class DurableCluster(ThrowawayCluster):
    """Commits wait for the WAL write, as on a real server: a server killed right
    after a commit still has it (the shared test cluster trades that for speed)."""

    SETTINGS = {**ThrowawayCluster.SETTINGS, "synchronous_commit": "on"}


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("the PostgreSQL binaries are needed to stop and start a server")
        pytest.skip("no PostgreSQL binaries to start a server of this test's own")
    try:
        server = DurableCluster(bindir)
        server.start()
    except ServerUnavailable as exc:
        pytest.fail(f"cannot start a PostgreSQL cluster: {exc}")
    yield server
    server.stop()


class Project:
    def __init__(self, tmp_path: Path, url: str) -> None:
        self.flows = tmp_path / "outage_flows.py"
        self.flows.write_text(FLOW)
        self.side = tmp_path / "side.txt"
        self.env = {
            **os.environ,
            "LEGATO_DATABASE_URL": url,
            "SIDE_EFFECTS": str(self.side),
            "LEGATO_LOG_TO_CONSOLE": "0",
        }

    def legato(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "legato", *args],
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def lines(self) -> list[str]:
        return self.side.read_text().splitlines() if self.side.exists() else []

    def wait_for(self, line: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.lines():
            if time.monotonic() > deadline:
                raise AssertionError(f"{line!r} never appeared: {self.lines()}")
            time.sleep(0.05)


def test_a_short_outage_is_ridden_out(cluster: ThrowawayCluster, tmp_path: Path) -> None:
    project = Project(tmp_path, cluster.url)
    run = project.legato("run", f"{project.flows}:outage", "--json", LEGATO_PG_RETRY_SECONDS="30")
    project.wait_for("b started")
    cluster.halt()
    time.sleep(1.0)
    cluster.restart()
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert Counter(project.lines()) == Counter({"a": 1, "b started": 1, "b": 1, "c": 1})


def test_a_long_outage_ends_the_run_as_crashed_and_resume_completes_it(
    cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    project = Project(tmp_path, cluster.url)
    run = project.legato("run", f"{project.flows}:outage", LEGATO_PG_RETRY_SECONDS="2")
    project.wait_for("b started")
    cluster.halt()
    try:
        out, err = run.communicate(timeout=120)
    finally:
        cluster.restart()
    assert run.returncode == 1, err
    assert "could not be reached for 2s" in err and "legato resume" in err
    assert cluster.password not in err + out
    assert "Traceback" not in err
    # One line (plus the engine's note), and the monitor's report of the failing
    # heartbeat, once.
    lines = err.strip().splitlines()
    beats = [line for line in lines if "heartbeat failed" in line]
    assert len(beats) <= 1, err
    assert len(lines) - len(beats) <= 2, err
    assert "Traceback" not in err

    listed = project.legato("runs", "--json")
    listing, _ = listed.communicate(timeout=60)
    import json

    [crashed] = json.loads(listing)
    assert crashed["state"] == "crashed"
    resumed = project.legato("resume", crashed["id"])
    _, resume_err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, resume_err
    counts = Counter(project.lines())
    # "a" completed (and was recorded) before the outage: replayed, not run again.
    assert counts["a"] == 1 and counts["c"] == 1
    # "b" was in flight when its record could not be written: it runs again.
    assert counts["b"] == 2


def _task(run: FlowRun, key: str) -> TaskRun:
    return TaskRun(
        id=uuid.uuid4().hex,
        flow_run_id=run.id,
        call_key=key,
        task_name="t",
        name=key,
        state=StateType.COMPLETED,
    )


def test_a_store_call_waits_for_the_server_to_come_back(
    cluster: ThrowawayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_PG_RETRY_SECONDS", "30")
    store = PostgresStore(cluster.url)
    try:
        run = FlowRun(id=uuid.uuid4().hex, flow_name="f", name="n", state=StateType.PENDING)
        store.create_flow_run(run)
        owner = RunOwner(token="tok", host="h", pid=1)
        started = store.start_flow_run(
            run.id, owner, from_states=[StateType.PENDING], now=run.created
        )
        assert started is not None
        cluster.halt()
        restart = threading.Timer(1.0, cluster.restart)
        restart.start()
        store.record_task_run(_task(run, "t[0]"), "tok")  # waits, then lands once
        restart.join(60)  # pg_ctl returns a little after the server accepts connections
        assert [t.call_key for t in store.list_task_runs(run.id)] == ["t[0]"]
        assert store.get_flow_run(run.id).attempts == 1  # type: ignore[union-attr]
    finally:
        store.close()


def test_after_the_retry_window_the_error_says_what_to_do(
    cluster: ThrowawayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_PG_RETRY_SECONDS", "1")
    store = PostgresStore(cluster.url)
    try:
        store.get_flow_run("warm-up")
        cluster.halt()
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            store.get_flow_run("x")
        assert time.monotonic() - started < 20
        message = str(info.value)
        assert "could not be reached for 1s" in message and "legato resume" in message
        assert cluster.password not in message and "***" in message
    finally:
        cluster.restart()
        store.close()


def test_a_worker_rides_out_an_outage_longer_than_its_retries(
    cluster: ThrowawayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from legato.client import Client

    project = Project(tmp_path, cluster.url)
    monkeypatch.setenv("LEGATO_DATABASE_URL", cluster.url)
    store = PostgresStore(cluster.url)
    client = Client(store)
    try:
        client.deploy(f"{project.flows}:outage", name="outage", parameters={"slow": 0})
        worker = project.legato("worker", LEGATO_PG_RETRY_SECONDS="1")
        stderr = worker.stderr
        assert stderr is not None
        said: list[str] = []  # the worker's stderr, line by line, as it comes
        reader = threading.Thread(target=lambda: said.extend(stderr))
        reader.start()

        def completed(run_id: str) -> bool:
            run = store.get_flow_run(run_id)
            return run is not None and run.state is StateType.COMPLETED

        first = client.trigger("outage")
        wait_until(lambda: completed(first.id), timeout=60, what="the first run to complete")
        cluster.halt()
        wait_until(
            lambda: sum("store unreachable, retrying" in line for line in said) >= 2,
            timeout=60,
            what="the worker to run out of its store retries twice",
        )
        cluster.restart()
        second = client.trigger("outage")
        wait_until(lambda: completed(second.id), timeout=60, what="the worker to come back")
        assert worker.poll() is None  # still running
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
        reader.join(10)
        err = "".join(said)
        assert worker.returncode == 0, err
        assert "store unreachable, retrying" in err
        assert cluster.password not in err
    finally:
        store.close()
