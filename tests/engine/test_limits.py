"""Global limits on tasks, across real processes (both backends)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from _engine_support import legato_cmd, subprocess_env, wait_until

from legato import flow, task
from legato.client import Client
from legato.engine.limits import forget_known_limits, limit_waiters
from legato.errors import ConfigurationError
from legato.states import StateType
from legato.store import get_default_store

FLOWS = """
import os
import time
from legato import flow, task


def note(text):
    with open(os.environ["SPANS"], "a") as f:
        f.write(text + "\\n")


@task(tags=["db"])
def query(n: int, seconds: float = 0.3) -> int:
    note(f"start {time.time()!r}")
    time.sleep(seconds)
    note(f"end {time.time()!r}")
    return n


@flow
def many(items: int = 4, seconds: float = 0.3) -> int:
    return sum(query.map(range(items), seconds=seconds).result())


@task(tags=["api"])
def call(n: int) -> int:
    note(f"call {time.time()!r}")
    return n


@flow
def calls(items: int = 6) -> int:
    return sum(call(n) for n in range(items))
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "limited_flows.py"
    path.write_text(FLOWS)
    return path


def spans(path: Path, kind: str) -> list[float]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [float(line.split()[1]) for line in lines if line.startswith(kind + " ")]


def max_overlap(starts: list[float], ends: list[float]) -> int:
    events = sorted([(t, 1) for t in starts] + [(t, -1) for t in ends])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_a_limit_of_two_holds_across_four_processes(
    flows: Path, tmp_path: Path, legato_home: Path
) -> None:
    Client().set_limit("db", 2)
    spans_file = tmp_path / "spans.txt"
    env = subprocess_env(legato_home, SPANS=str(spans_file))
    procs = [
        subprocess.Popen(
            legato_cmd("run", f"{flows}:many", "--json"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    starts, ends = spans(spans_file, "start"), spans(spans_file, "end")
    assert len(starts) == len(ends) == 16
    assert max_overlap(starts, ends) == 2  # used fully, never exceeded
    assert Client().limits()[0].active == 0  # every slot given back


def test_a_slot_held_by_a_killed_process_frees_itself(
    flows: Path, tmp_path: Path, legato_home: Path
) -> None:
    Client().set_limit("db", 1)
    spans_file = tmp_path / "spans.txt"
    env = subprocess_env(
        legato_home, SPANS=str(spans_file), LEGATO_LEASE_SECONDS="2", LEGATO_HEARTBEAT_SECONDS="0.2"
    )
    holder = subprocess.Popen(
        legato_cmd("run", f"{flows}:many", "-p", "items=1", "-p", "seconds=60"), env=env
    )
    wait_until(lambda: len(spans(spans_file, "start")) == 1, what="the first task holds the slot")
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    second = subprocess.run(
        legato_cmd("run", f"{flows}:many", "-p", "items=1", "-p", "seconds=0"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr
    assert len(spans(spans_file, "end")) == 1  # only the second process's task ended


def test_a_rate_limit_spaces_task_starts(flows: Path, tmp_path: Path, legato_home: Path) -> None:
    Client().set_limit("api", 2, per_seconds=1)
    spans_file = tmp_path / "spans.txt"
    done = subprocess.run(
        legato_cmd("run", f"{flows}:calls", "-p", "items=6"),
        env=subprocess_env(legato_home, SPANS=str(spans_file)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    starts = sorted(spans(spans_file, "call"))
    assert len(starts) == 6
    for index in range(2, 6):  # any three consecutive starts span at least the window
        assert starts[index] - starts[index - 2] >= 0.95


@task(tags=["blocked"])
def blocked_task() -> int:
    return 1


@flow
def blocked_flow() -> int:
    return blocked_task()


def test_cancelling_a_run_that_waits_for_a_slot_stops_it(legato_home: Path) -> None:
    client = Client()
    client.set_limit("blocked", 0)
    forget_known_limits()
    result: list[object] = []
    import threading

    runner = threading.Thread(target=lambda: result.append(blocked_flow(return_state=True)))
    runner.start()
    waiters = limit_waiters(get_default_store()).shared
    wait_until(lambda: waiters.waiters == 1, what="the task to wait for a slot")
    [run] = client.list_runs(states=[StateType.RUNNING])
    client.cancel_run(run.id)
    runner.join(30)
    assert result and result[0].type is StateType.CANCELLED  # type: ignore[attr-defined]
    [task_run] = client.task_runs(run.id)
    assert task_run.state is StateType.CANCELLED


def test_bad_limits_are_clear_errors() -> None:
    client = Client()
    with pytest.raises(ConfigurationError, match="must be a whole number from 0"):
        client.set_limit("db", -1)
    with pytest.raises(ConfigurationError, match="seconds more than 0"):
        client.set_limit("db", 1, per_seconds=0)
    with pytest.raises(ConfigurationError, match="no limit named 'nope'"):
        client.delete_limit("nope")
