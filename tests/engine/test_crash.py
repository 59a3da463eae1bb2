"""Crashes: SIGKILL a real ``legato run`` in the middle of a flow, then resume it.

The flows record every side effect in a journal file, so the test can prove
that each task that completed before the kill ran exactly once, and that only
the task in flight ran again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _engine_support import Journal, legato_cmd, record, run_legato, subprocess_env, wait_until

import legato
from legato import StateType, flow, task
from legato.client import Client
from legato.engine.flow_engine import create_flow_run
from legato.records import FlowRun, RunOwner, utcnow
from legato.store.base import Store

FLOWS = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from legato import ThreadPoolTaskRunner, flow, task

    JOURNAL = Path(os.environ["LEGATO_TEST_JOURNAL"])
    KILLS = int(os.environ.get("KILLS", "1"))


    def note(line):
        with open(JOURNAL, "a") as f:
            f.write(line + "\\n")


    def times(line):
        return JOURNAL.read_text().splitlines().count(line) if JOURNAL.exists() else 0


    @task
    def step(i: int) -> int:
        note(f"done step {i}")
        return i


    @task
    def slow(x: int) -> int:
        note("start slow")
        if times("start slow") <= KILLS:
            time.sleep(30)  # the test kills the process here
        note("done slow")
        return x + 100


    def crashed_hook(flow, run, state):
        note(f"on_crashed {state.type.value}")


    @flow(on_crashed=[crashed_hook])
    def pipeline(n: int = 3) -> int:
        total = 0
        for i in range(n):
            total += step(i)
        total = slow(total)
        for i in range(n, n + 2):
            total += step(i)
        return total


    @task
    def item(i: int) -> int:
        note(f"start item {i}")
        if i == 5 and times("start item 5") == 1:
            time.sleep(30)  # the test kills the process here
        note(f"done item {i}")
        return i * i


    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def fanout(n: int = 12) -> int:
        return sum(fut.result() for fut in item.map(range(n)))
    """
)


@pytest.fixture
def flows_file(tmp_path: Path) -> Path:
    path = tmp_path / "crash_flows.py"
    path.write_text(FLOWS)
    return path


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def start_run(
    procs: list[subprocess.Popen[str]], home: Path, target: str, *args: str, **env: str
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        legato_cmd("run", target, "--json", *args),
        env=subprocess_env(home, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs.append(proc)
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    assert proc.poll() is None, f"the run ended before the kill: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def the_run(store: Store) -> FlowRun:
    runs = store.list_flow_runs(limit=5)
    assert len(runs) == 1, runs
    return runs[0]


def resume_json(home: Path, run_id: str, **env: str) -> dict[str, Any]:
    result = run_legato(home, "resume", run_id, "--json", **env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("kills", [1, 2])
def test_sigkill_mid_flow_then_resume(
    legato_home: Path,
    default_store: Store,
    journal: Journal,
    flows_file: Path,
    procs: list[subprocess.Popen[str]],
    kills: int,
) -> None:
    env = {"KILLS": str(kills)}
    proc = start_run(procs, legato_home, f"{flows_file}:pipeline", "-p", "n=3", **env)
    wait_until(lambda: journal.count("start slow") == 1, what="slow to start")
    kill(proc)
    assert journal.counts() == {
        "done step 0": 1,
        "done step 1": 1,
        "done step 2": 1,
        "start slow": 1,
    }

    run = the_run(default_store)
    assert default_store.get_flow_run(run.id).state is StateType.RUNNING  # type: ignore[union-attr]
    seen = Client().get_run(run.id)
    assert seen.state is StateType.CRASHED
    assert str(proc.pid) in (seen.state_message or "")
    listed = run_legato(legato_home, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["id"], r["state"]) for r in json.loads(listed.stdout)] == [(run.id, "crashed")]
    # What was committed before the kill: the three steps, complete with results.
    before = {t.call_key: t for t in default_store.list_task_runs(run.id)}
    for i in range(3):
        assert before[f"step[{i}]"].state is StateType.COMPLETED

    for k in range(2, kills + 1):
        # Crash the resume too, in the same task.
        resumer = subprocess.Popen(
            legato_cmd("resume", run.id, "--json"),
            env=subprocess_env(legato_home, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(resumer)
        wait_until(lambda k=k: journal.count("start slow") == k, what="slow to start again")
        kill(resumer)
        assert Client().get_run(run.id).state is StateType.CRASHED

    data = resume_json(legato_home, run.id, **env)
    assert data["id"] == run.id
    assert data["state"] == "completed"
    assert data["result"] == (0 + 1 + 2) + 100 + 3 + 4

    counts = journal.counts()
    for i in range(5):
        assert counts[f"done step {i}"] == 1, counts  # completed tasks ran exactly once
    assert counts["start slow"] == kills + 1  # only the task in flight ran again
    assert counts["done slow"] == 1
    assert counts["on_crashed crashed"] == kills  # at each resume of a crashed run

    final = default_store.get_flow_run(run.id)
    assert final is not None and final.state is StateType.COMPLETED
    assert final.attempts == kills + 1
    after = {t.call_key: t for t in default_store.list_task_runs(run.id)}
    assert set(after) == {"step[0]", "step[1]", "step[2]", "slow[0]", "step[3]", "step[4]"}
    assert all(t.state is StateType.COMPLETED for t in after.values())
    for i in range(3):
        assert after[f"step[{i}]"].id == before[f"step[{i}]"].id


def test_sigkill_during_a_map_fan_out(
    legato_home: Path,
    default_store: Store,
    journal: Journal,
    flows_file: Path,
    procs: list[subprocess.Popen[str]],
) -> None:
    proc = start_run(procs, legato_home, f"{flows_file}:fanout")

    def eleven_committed() -> bool:
        runs = default_store.list_flow_runs(limit=1)
        if not runs:
            return False
        counts = default_store.count_task_runs(runs[0].id)
        return counts.get(StateType.COMPLETED, 0) == 11

    wait_until(eleven_committed, what="all items but item 5 to complete")
    assert journal.count("start item 5") == 1
    kill(proc)

    run = the_run(default_store)
    assert Client().get_run(run.id).state is StateType.CRASHED
    done_before = {
        t.call_key for t in default_store.list_task_runs(run.id) if t.state is StateType.COMPLETED
    }
    assert done_before == {f"item[{i}]" for i in range(12) if i != 5}

    data = resume_json(legato_home, run.id)
    assert data["state"] == "completed"
    assert data["result"] == sum(i * i for i in range(12))
    counts = journal.counts()
    for i in range(12):
        if i != 5:
            assert counts[f"start item {i}"] == 1, (i, counts)
            assert counts[f"done item {i}"] == 1, (i, counts)
    assert counts["start item 5"] == 2
    assert counts["done item 5"] == 1
    after = default_store.list_task_runs(run.id)
    assert len(after) == 12
    assert all(t.state is StateType.COMPLETED for t in after)


# --- a run owned by another host ---------------------------------------------------


@task
def remote_step() -> str:
    record("remote_step")
    return "done here"


@flow
def remote_flow() -> str:
    return remote_step()


def test_run_of_another_host_with_a_stale_heartbeat_reads_as_crashed(
    legato_home: Path,
    default_store: Store,
    journal: Journal,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_LEASE_SECONDS", "1")
    run = create_flow_run(remote_flow, default_store, {})
    owner = RunOwner(token=uuid.uuid4().hex, host="elsewhere", pid=os.getpid())
    started = default_store.start_flow_run(
        run.id, owner, from_states=[StateType.PENDING], now=utcnow() - timedelta(seconds=3)
    )
    assert started is not None
    # Another process, with the same short lease, sees it crashed too.
    listed = run_legato(legato_home, "runs", "--json", LEGATO_LEASE_SECONDS="1")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["id"], row["state"]) == (run.id, "crashed")
    seen = Client().get_run(run.id)
    assert seen.state is StateType.CRASHED
    assert "no heartbeat from elsewhere" in (seen.state_message or "")
    # And it can be resumed here.
    assert legato.resume_flow_run(run.id) == "done here"
    assert journal.counts() == {"remote_step": 1}


def test_run_of_another_host_within_its_lease_stays_running(
    legato_home: Path, default_store: Store
) -> None:
    run = create_flow_run(remote_flow, default_store, {})
    owner = RunOwner(token=uuid.uuid4().hex, host="elsewhere", pid=1)
    default_store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=utcnow())
    listed = run_legato(legato_home, "runs", "--json")  # default lease: 30 s
    (row,) = json.loads(listed.stdout)
    assert row["state"] == "running"
    with pytest.raises(legato.LegatoError, match="is running"):
        legato.resume_flow_run(run.id)
