"""Prefect scripts run unchanged through `legato.prefect_shim`.

The scripts below are written as Prefect's documentation writes them (``from
prefect import flow, task``...), and run in real processes through the three
ways in: ``python -m legato.prefect``, ``legato run --prefect`` and
``LEGATO_PREFECT_SHIM=1``. The real ``prefect`` is not installed here, which
the first test checks, since every other test depends on it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from _waiting import wait_until
from legato import StateType
from legato.client import Client
from legato.errors import PrefectAttributeUnsupported, PrefectImportUnsupported
from legato.prefect_shim import MODULES, install, unsupported_message
from legato.store.base import Store

LEGATO = str(Path(sys.executable).with_name("legato"))

SCALED = textwrap.dedent(
    """
    import json
    import sys

    from prefect import flow, task, unmapped
    from prefect.futures import wait
    from prefect.logging import get_run_logger
    from prefect.states import Completed
    import prefect.runtime.flow_run


    @task
    def scale(x: int, factor: int) -> int:
        return x * factor


    @flow
    def scaled(n: int = 3, factor: int = 10) -> dict:
        get_run_logger().info("scaling in run %s", prefect.runtime.flow_run.id)
        futures = scale.map(range(n), unmapped(factor))
        done, not_done = wait(futures)
        return {
            "run_id": prefect.runtime.flow_run.id,
            "values": [future.result() for future in futures],
            "waited": len(done) == n and not not_done,
            "completed": Completed().is_completed(),
        }


    if __name__ == "__main__":
        print(json.dumps(scaled(int(sys.argv[1]))))
    """
)

APPROVAL = textwrap.dedent(
    """
    from prefect import flow, pause_flow_run
    from prefect.input import RunInput


    class Approval(RunInput):
        approved: bool


    @flow
    def approve() -> str:
        answer = pause_flow_run(wait_for_input=Approval)
        return "approved" if answer.approved else "refused"
    """
)


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_real_prefect_is_not_installed() -> None:
    assert importlib.util.find_spec("prefect") is None


def check_recorded(store: Store, run_id: str, tasks: int) -> None:
    (recorded,) = store.list_flow_runs(limit=10)
    assert recorded.id == run_id
    assert recorded.flow_name == "scaled"
    assert recorded.state == StateType.COMPLETED
    task_runs = store.list_task_runs(run_id)
    assert sorted(tr.state for tr in task_runs) == [StateType.COMPLETED] * tasks


def test_python_m_legato_prefect_runs_the_script_unchanged(
    tmp_path: Path, default_store: Store
) -> None:
    script = write(tmp_path, "scaled.py", SCALED)
    done = run(sys.executable, "-m", "legato.prefect", str(script), "4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["values"] == [0, 10, 20, 30]
    assert result["waited"] and result["completed"]
    check_recorded(default_store, result["run_id"], tasks=4)


def test_legato_run_prefect_runs_the_flow_unchanged(tmp_path: Path, default_store: Store) -> None:
    write(tmp_path, "scaled.py", SCALED)
    done = run(LEGATO, "run", "--prefect", "scaled.py:scaled", "-p", "n=2", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["result"]["values"] == [0, 10]
    assert data["result"]["run_id"] == data["id"]
    check_recorded(default_store, data["id"], tasks=2)


def test_the_setting_installs_the_hook_and_nothing_else_does(tmp_path: Path) -> None:
    write(tmp_path, "scaled.py", SCALED)
    plain = run(LEGATO, "run", "scaled.py:scaled", cwd=tmp_path)
    assert plain.returncode == 2
    assert "No module named 'prefect'" in plain.stderr
    assert "legato run --prefect" in plain.stderr  # the way out, in the same line
    assert len(plain.stderr.strip().splitlines()) == 1
    shimmed = run(LEGATO, "run", "scaled.py:scaled", cwd=tmp_path, LEGATO_PREFECT_SHIM="1")
    assert shimmed.returncode == 0, shimmed.stderr


def test_the_setting_lets_legato_deploy_prefect_code(tmp_path: Path) -> None:
    write(tmp_path, "scaled.py", SCALED)
    plain = run(LEGATO, "deploy", "scaled.py:scaled", "--name", "scaled", cwd=tmp_path)
    assert plain.returncode == 2 and "No module named 'prefect'" in plain.stderr
    shimmed = run(
        LEGATO,
        "deploy",
        "scaled.py:scaled",
        "--name",
        "scaled",
        cwd=tmp_path,
        LEGATO_PREFECT_SHIM="1",
    )
    assert shimmed.returncode == 0, shimmed.stderr
    shown = run(LEGATO, "deployment", "show", "scaled", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["flow"] == "scaled"


def test_a_paused_prefect_flow_resumes_with_the_setting(tmp_path: Path) -> None:
    write(tmp_path, "approval.py", APPROVAL)
    paused = run(LEGATO, "run", "--prefect", "approval.py:approve", "--json", cwd=tmp_path)
    assert paused.returncode == 3, paused.stderr
    run_id = json.loads(paused.stdout)["id"]
    answer = '{"approved": true}'
    resumed = run(
        LEGATO, "resume", run_id, "--input", answer, "--json", cwd=tmp_path, LEGATO_PREFECT_SHIM="1"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["result"] == "approved"


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("from prefect.blocks.system import Secret\n", "prefect.blocks"),
        ("import prefect.deployments\n", "prefect.deployments"),
        ("from prefect import deploy_everything\n", "prefect.deploy_everything"),
        ("from prefect.logging import get_everything\n", "prefect.logging.get_everything"),
        ("import prefect\nprefect.get_client\n", "prefect.get_client"),
    ],
)
def test_an_unsupported_name_fails_with_one_line(tmp_path: Path, source: str, name: str) -> None:
    script = write(tmp_path, "unsupported.py", source)
    done = run(sys.executable, "-m", "legato.prefect", str(script), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == unsupported_message(name) + "\n"
    assert done.stderr == f'{name} is not supported by legato (see README "Running Prefect code")\n'


def test_an_installed_prefect_wins(tmp_path: Path) -> None:
    fake = tmp_path / "site" / "prefect"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("REAL = 'the installed one'\n")
    (fake / "blocks.py").write_text("SECRET = 'a block'\n")
    script = write(tmp_path, "uses.py", "import prefect, prefect.blocks\nprint(prefect.REAL)\n")
    done = run(
        sys.executable,
        "-m",
        "legato.prefect",
        str(script),
        cwd=tmp_path,
        PYTHONPATH=str(fake.parent),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "the installed one\n"


@pytest.fixture
def shim() -> Iterator[None]:
    """The hook installed in this process, then removed with every module it served."""
    saved = list(sys.meta_path)
    install()
    try:
        yield
    finally:
        sys.meta_path[:] = saved
        for name in [n for n in sys.modules if n == "prefect" or n.startswith("prefect.")]:
            del sys.modules[name]


@pytest.mark.usefixtures("shim")
def test_mapped_modules_read_their_legato_modules() -> None:
    import prefect
    import prefect.runtime.flow_run
    from prefect.states import Completed

    import legato
    import legato.runtime.flow_run

    assert prefect.flow is legato.flow and prefect.task is legato.task
    assert prefect.State is legato.State and prefect.unmapped is legato.unmapped
    assert prefect.tags is legato.tags
    assert Completed is legato.states.Completed
    assert prefect.runtime.flow_run.id is None  # read at each access, outside a run here
    assert "Completed" in prefect.states.__all__
    assert "flow" in dir(prefect) and "runtime" in dir(prefect)
    assert prefect.runtime.flow_run.get_id is legato.runtime.flow_run.get_id
    assert not hasattr(prefect, "get_client")
    blob = r"^prefect\.states\.Blob is not supported"
    with pytest.raises(PrefectAttributeUnsupported, match=blob):
        prefect.states.Blob  # noqa: B018
    with pytest.raises(PrefectImportUnsupported, match=r"^prefect\.blocks is not supported"):
        import prefect.blocks
    # Every mapped module whose legato module exists imports (prefect.cache_policies
    # maps once legato.cache_policies is there).
    for name, target in MODULES.items():
        if importlib.util.find_spec(target) is not None:
            assert importlib.import_module(name).__doc__ == importlib.import_module(target).__doc__


@pytest.mark.usefixtures("shim")
def test_a_worker_runs_a_prefect_flow_with_the_setting(
    tmp_path: Path, default_store: Store
) -> None:
    script = write(tmp_path, "scaled.py", SCALED)
    client = Client()
    client.deploy(f"{script}:scaled", name="scaled")  # loads the file: needs the hook here
    queued = client.trigger("scaled", {"n": 3})
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "legato", "worker", "--name", "prefect-box"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LEGATO_PREFECT_SHIM": "1"},
        )
    try:
        wait_until(
            lambda: default_store.get_flow_run(queued.id).state.is_final,  # type: ignore[union-attr]
            timeout=60,
            interval=0.05,
            what="the worker finished the run",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert client.run_result(queued.id)["values"] == [0, 10, 20], log.read_text()
    check_recorded(default_store, queued.id, tasks=3)
