"""``legato suspend``: a running run pauses itself at its next task boundary, its
process is released, and ``legato resume`` continues it (completed tasks replayed)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from _waiting import wait_until

if TYPE_CHECKING:
    from conftest import Cli

pytestmark = pytest.mark.usefixtures("backend")  # SQLite and PostgreSQL

JOB = """
import os
import time
from pathlib import Path

from legato import flow, task
from legato.engine.context import TASK_CONTEXT

STATE = Path(os.environ["FLOW_STATE_DIR"])


@task
def step(i: int) -> int:
    with open(STATE / f"step{i}.count", "a") as f:
        f.write("x")
    return i


@task
def until_asked_to_pause() -> None:
    # Holds the run in a task until its heartbeat has brought the suspension
    # request in (or, after a resume, returns at once: nothing was asked).
    (STATE / "waiting").write_text("yes")
    ctx = TASK_CONTEXT.get().flow_ctx
    deadline = time.monotonic() + 60
    while not ctx.pause_requested and not (STATE / "resumed").exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the suspension request never reached the run")
        time.sleep(0.02)


@flow
def long_job() -> int:
    first = step(1)
    until_asked_to_pause()
    return first + step(2)
"""


def test_suspend_pauses_a_running_run_and_resume_continues_it(cli: Cli) -> None:
    path = cli.flows_dir / "job.py"
    path.write_text(JOB)
    proc = cli.popen("run", f"{path}:long_job", "--json", LEGATO_HEARTBEAT_SECONDS="0.2")
    try:
        wait_until((cli.state_dir / "waiting").exists, timeout=60, what="the run to start")
        run_id = cli("runs", "--json", "--state", "running").json()[0]["id"]
        asked = cli("suspend", run_id[:8], "--json")
        assert asked.code == 0, str(asked)
        assert asked.json()["suspend_requested"] is True
        # The run's own process ends: it paused and let go of the run.
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    shown = cli("runs", "--json").json()[0]
    assert shown["id"] == run_id and shown["state"] == "paused", out + err
    assert (cli.state_dir / "step1.count").read_text() == "x"
    assert not (cli.state_dir / "step2.count").exists()

    # A run that is not running is left as it is.
    again = cli("suspend", run_id)
    assert again.code == 0 and "not running; nothing to suspend" in again.stdout
    assert cli("runs", "--json").json()[0]["state"] == "paused"

    (cli.state_dir / "resumed").write_text("yes")
    resumed = cli("resume", run_id, "--json")
    assert resumed.code == 0, str(resumed)
    data = json.loads(resumed.stdout)
    assert data["state"] == "completed" and data["result"] == 3
    assert (cli.state_dir / "step1.count").read_text() == "x"  # replayed, not run again
    assert (cli.state_dir / "step2.count").read_text() == "x"
