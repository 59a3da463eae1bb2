"""`Flow.deploy` and `Flow.serve`: deployments from Python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from _waiting import wait_until
from legato import flow
from legato.client import Client
from legato.engine.entrypoints import load_flow
from legato.errors import ParameterValidationError, ScheduleError, TargetNotFoundError
from legato.records import CollisionStrategy
from legato.states import StateType

SCRIPT = """
import os
from legato import flow, task


@task
def mark(n: int) -> int:
    with open(os.environ["SERVED"], "a") as f:
        f.write(f"{n}\\n")
    return n


@flow
def served(n: int = 1) -> int:
    return mark(n)


if __name__ == "__main__":
    served.serve("served-every-second", interval=1, parameters={"n": 7}, concurrency=2)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "served.py"
    path.write_text(SCRIPT)
    return path


def test_flow_deploy_stores_a_deployment_with_its_schedules(script: Path) -> None:
    served = load_flow(f"{script}:served")
    deployment = served.deploy(
        "nightly",
        cron="0 2 * * *",
        interval=[3600],
        timezone="Europe/Paris",
        parameters={"n": 2},
        tags=["etl"],
        concurrency_limit=1,
        collision_strategy="cancel_new",
    )
    stored = Client().get_deployment("nightly")
    assert stored == deployment
    assert stored.entrypoint == f"{script}:served"
    assert [s.cron for s in stored.schedules] == ["0 2 * * *", None]
    assert stored.schedules[1].interval == 3600 and stored.schedules[1].timezone == "Europe/Paris"
    assert stored.parameters == {"n": 2} and stored.tags == ("etl",)
    assert stored.collision_strategy is CollisionStrategy.CANCEL_NEW


def test_flow_deploy_checks_what_it_is_given(script: Path) -> None:
    served = load_flow(f"{script}:served")
    with pytest.raises(ScheduleError, match="invalid cron"):
        served.deploy("bad", cron="every night")
    with pytest.raises(ParameterValidationError, match="unknown parameter 'm'"):
        served.deploy("bad", parameters={"m": 1})
    with pytest.raises(ParameterValidationError, match="'n'"):
        served.deploy("bad", interval=60, parameters={"n": "not a number"})
    assert Client().deployments() == []


def test_a_flow_defined_inside_a_function_cannot_be_deployed() -> None:
    @flow
    def local() -> None:
        pass

    with pytest.raises(TargetNotFoundError, match="cannot import it"):
        local.deploy("local")


def test_serve_runs_the_schedule_in_this_process_until_sigterm(
    script: Path, tmp_path: Path
) -> None:
    served_log = tmp_path / "served.txt"
    env = {**os.environ, "SERVED": str(served_log), "LEGATO_LOG_TO_CONSOLE": "0"}
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(
            lambda: served_log.exists() and len(served_log.read_text().split()) >= 2,
            timeout=60,
            interval=0.05,
            what="two scheduled runs served",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert set(served_log.read_text().split()) == {"7"}
    runs = Client().list_runs(deployment="served-every-second")
    completed = [r for r in runs if r.state is StateType.COMPLETED]
    assert len(completed) >= 2
    # The script was imported by the worker's children without serving again.
    assert err.count("worker") >= 1 and err.count("leading the scheduler") == 1
