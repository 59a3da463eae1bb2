"""`legato.observe`, `legato.observe_task` and `legato run script.py`: existing code
recorded as runs, never replayed (both backends)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import legato
from legato.client import Client
from legato.errors import CommandFailedError
from legato.records import FlowRun
from legato.server import create_app
from legato.states import StateType
from legato.store import get_default_store

pytestmark = pytest.mark.usefixtures("backend")

calls: list[int] = []


@legato.observe_task
def double(n: int) -> int:
    calls.append(n)
    return n * 2


def only_run() -> FlowRun:
    runs = get_default_store().list_flow_runs()
    assert len(runs) == 1, runs
    return runs[0]


def test_a_block_becomes_a_run_with_its_task_calls_and_logs() -> None:
    calls.clear()
    with legato.observe("nightly-report", tags=["team"]) as run_id:
        legato.get_run_logger().info("inside the block")
        results = [double(1), double(2), double(1)]
    assert results == [2, 4, 2]
    assert calls == [1, 2, 1]  # every call ran: nothing cached or replayed
    store = get_default_store()
    run = store.get_flow_run(run_id)
    assert run is not None and run.state is StateType.COMPLETED
    assert run.flow_name == "nightly-report"
    assert {"observed", "team"} <= set(run.tags)
    task_runs = store.list_task_runs(run_id)
    assert sorted(tr.call_key for tr in task_runs) == ["double[0]", "double[1]", "double[2]"]
    assert {tr.state for tr in task_runs} == {StateType.COMPLETED}
    assert "inside the block" in [log.message for log in store.read_logs(run_id)]


def test_outside_an_observed_run_the_function_is_just_called() -> None:
    calls.clear()
    assert double(5) == 10
    assert calls == [5]
    assert get_default_store().list_flow_runs() == []


def test_an_exception_propagates_unchanged_and_fails_the_run() -> None:
    error = KeyError("missing")
    with pytest.raises(KeyError) as raised, legato.observe("broken"):
        double(3)
        raise error
    assert raised.value is error
    run = only_run()
    assert run.state is StateType.FAILED
    assert "KeyError" in (run.state_message or "")
    [task_run] = get_default_store().list_task_runs(run.id)
    assert task_run.state is StateType.COMPLETED


def test_a_failing_observed_task_fails_its_task_run() -> None:
    @legato.observe_task
    def explode() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"), legato.observe("with-failure"):
        explode()
    run = only_run()
    [task_run] = get_default_store().list_task_runs(run.id)
    assert task_run.state is StateType.FAILED
    assert run.state is StateType.FAILED


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "nightly.py"
    path.write_text(textwrap.dedent(body))
    return path


def _legato(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legato", *args], capture_output=True, text=True, timeout=120
    )


def test_legato_run_on_a_plain_script_runs_its_main_as_an_observed_run(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        import legato

        @legato.observe_task
        def fetch(day):
            return day.upper()

        def main():
            legato.get_run_logger().info("fetched %s", fetch("mon"))

        if __name__ == "__main__":
            main()
            print("done")
        """,
    )
    result = _legato("run", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    run = only_run()
    assert run.flow_name == "nightly"
    assert run.state is StateType.COMPLETED
    assert "observed" in run.tags
    assert [tr.call_key for tr in get_default_store().list_task_runs(run.id)] == ["fetch[0]"]
    assert "fetched MON" in [log.message for log in get_default_store().read_logs(run.id)]

    # Like any run: listed, shown, and rendered by the UI.
    assert "nightly" in _legato("runs").stdout
    shown = _legato("show", run.id)
    assert shown.returncode == 0 and "completed" in shown.stdout
    with TestClient(create_app(Client())) as http:
        page = http.get(f"/runs/{run.id}")
        assert page.status_code == 200 and "nightly" in page.text

    # Never resumed: there is no flow to call again.
    refused = _legato("resume", run.id)
    assert refused.returncode != 0
    assert "observed run" in refused.stderr


def test_a_script_that_exits_non_zero_or_raises_fails_the_run(tmp_path: Path) -> None:
    script = _script(tmp_path, "import sys\nsys.exit(3)\n")
    result = _legato("run", str(script))
    assert result.returncode == 1
    assert "exited with code 3" in result.stderr
    run = only_run()
    assert run.state is StateType.FAILED

    script.write_text("raise RuntimeError('boom')\n")
    result = _legato("run", str(script))
    assert result.returncode == 1
    assert "RuntimeError: boom" in result.stderr  # Python's traceback
    states = {r.state for r in get_default_store().list_flow_runs()}
    assert states == {StateType.FAILED}


def test_a_script_with_flows_still_needs_the_flow_name(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        from legato import flow

        @flow
        def nightly():
            return 1
        """,
    )
    result = _legato("run", str(script))
    assert result.returncode == 2
    assert "file.py:flow_function" in result.stderr
    assert get_default_store().list_flow_runs() == []


def test_script_exit_zero_completes(tmp_path: Path) -> None:
    script = _script(tmp_path, "import sys\nsys.exit(0)\n")
    assert legato.observe_task is not None
    from legato.observed import run_script

    run_id = run_script(str(script))
    run = get_default_store().get_flow_run(run_id)
    assert run is not None and run.state is StateType.COMPLETED
    script.write_text("import sys\nsys.exit(2)\n")
    with pytest.raises(CommandFailedError, match="code 2"):
        run_script(str(script))


def test_an_interrupt_crashes_the_run_and_propagates_once() -> None:
    interrupt = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt) as raised, legato.observe("interrupted"):
        raise interrupt
    assert raised.value is interrupt
    run = only_run()
    assert run.state is StateType.CRASHED
    assert "KeyboardInterrupt" in (run.state_message or "")
