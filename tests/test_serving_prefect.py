"""`Flow.deploy`, `Flow.serve` and `Flow.from_source` with Prefect 3's arguments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _waiting import wait_until
from legato.client import Client
from legato.engine.entrypoints import load_flow
from legato.errors import ConfigurationError
from legato.flows import Flow
from legato.states import StateType

ETL = """
import os
from legato import flow


@flow
def etl(n: int = 1) -> int:
    if "SERVED" in os.environ:
        with open(os.environ["SERVED"], "a") as f:
            f.write(f"{n}\\n")
    return n


if __name__ == "__main__":
    etl.serve(
        work_pool_name="pool",
        interval=1,
        parameters={"n": 3},
        limit=2,
        global_limit=1,
        print_starting_message=False,
    )
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(ETL)
    return tmp_path


def test_deploy_takes_prefects_arguments(project: Path) -> None:
    etl = load_flow(f"{project}/flows/etl.py:etl")
    deployment = etl.deploy(
        "nightly",
        work_pool_name="etl-pool",
        build=False,
        push=False,
        cron="0 2 * * *",
        parameters={"n": 2},
        tags=["etl"],
        description="the nightly load",
        version="1.2",
        concurrency_limit=1,
        paused=True,
        print_next_steps=False,
        enforce_parameter_schema=True,
    )
    stored = Client().get_deployment("nightly")
    assert stored == deployment
    assert (stored.work_queue, stored.parameters, stored.tags) == ("etl-pool", {"n": 2}, ("etl",))
    assert (stored.description, stored.concurrency_limit, stored.paused) == (
        "the nightly load",
        1,
        True,
    )
    assert [s.cron for s in stored.schedules] == ["0 2 * * *"]
    # Deployed again with paused=False: resumed; the queue may be named either way.
    again = etl.deploy("nightly", work_queue_name="etl-pool", paused=False)
    assert not again.paused and again.work_queue == "etl-pool"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"image": "my-registry/etl:latest"}, r"deploy\(image='my-registry/etl:latest'\)"),
        ({"build": True}, r"deploy\(build=True\) is not supported: legato runs flows from their"),
        ({"push": True}, r"deploy\(push=True\) is not supported: .*\(no images\)"),
        ({"job_variables": {"env": {"A": "1"}}}, r"deploy\(job_variables=.*no images"),
        ({"triggers": ["x"]}, r"triggers\[0\] must be a legato.DeploymentEventTrigger"),
        ({"enforce_parameter_schema": False}, "always checks"),
        ({"work_pool_name": "a", "work_queue_name": "b"}, "name different queues"),
        ({"schedules": ["0 2 * * *"]}, "takes legato schedules"),
        ({"retries": 3}, "unknown argument 'retries'; it takes: name, work_pool_name"),
    ],
)
def test_deploy_refuses_what_legato_does_not_do_in_one_line(
    project: Path, options: dict[str, Any], problem: str
) -> None:
    etl = load_flow(f"{project}/flows/etl.py:etl")
    with pytest.raises(ConfigurationError, match=problem) as raised:
        etl.deploy("nightly", **options)
    assert "\n" not in str(raised.value)
    assert Client().deployments() == []


def test_serve_refuses_images_before_serving(project: Path) -> None:
    etl = load_flow(f"{project}/flows/etl.py:etl")
    with pytest.raises(ConfigurationError, match=r"serve\(image='x'\) is not supported"):
        etl.serve(image="x")
    with pytest.raises(ConfigurationError, match="disagree"):
        etl.serve(limit=1, concurrency=2)
    assert Client().deployments() == []


def test_from_source_loads_a_flow_from_a_local_folder_and_deploys_it(project: Path) -> None:
    etl = Flow.from_source(project, "flows/etl.py:etl")
    assert etl.name == "etl" and etl(n=5) == 5
    deployment = etl.deploy("from-folder", work_pool_name="pool", build=False)
    assert deployment.entrypoint == f"{project.resolve()}/flows/etl.py:etl"
    assert deployment.work_queue == "pool"
    assert Flow.from_source(str(project), "flows/etl.py:etl").name == "etl"


@pytest.mark.parametrize(
    ("source", "entrypoint", "problem"),
    [
        ("https://github.com/org/repo.git", "flows/etl.py:etl", "legato loads flows from a local"),
        ("git@github.com:org/repo.git", "flows/etl.py:etl", "clone or copy the code"),
        (object(), "flows/etl.py:etl", "takes a local folder, not a object"),
        ("missing", "flows/etl.py:etl", "no such folder"),
        (".", "etl", "write path/to/file.py:flow_function"),
    ],
)
def test_from_source_refuses_remote_sources_in_one_line(
    project: Path, source: object, entrypoint: str, problem: str
) -> None:
    if source in ("missing", "."):
        source = project / str(source)
    with pytest.raises(ConfigurationError, match=problem) as raised:
        Flow.from_source(source, entrypoint)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)


def test_serve_with_prefects_arguments_runs_the_schedule(project: Path, tmp_path: Path) -> None:
    served = tmp_path / "served.txt"
    env = {**os.environ, "SERVED": str(served), "LEGATO_LOG_TO_CONSOLE": "0"}
    proc = subprocess.Popen(
        [sys.executable, str(project / "flows" / "etl.py")],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: served.exists() and len(served.read_text().split()) >= 1,
            timeout=60,
            interval=0.05,
            what="a scheduled run served",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    deployment = Client().get_deployment("etl")  # named after the flow
    assert (deployment.work_queue, deployment.concurrency_limit) == ("pool", 1)
    runs = Client().list_runs(deployment="etl")
    assert any(r.state is StateType.COMPLETED for r in runs)
