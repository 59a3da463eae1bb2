"""Shared by the remote task runners' tests (process pool, Dask, Ray): a flow's
process killed mid-map, then `legato resume`, must not send completed keys again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _waiting import wait_until
from legato.records import TaskRun
from legato.states import StateType
from legato.store.base import Store

# {runner_import} and {runner} name the runner; LEGATO_TEST_RUNNER_ADDRESS reaches a
# cluster the test started. Item 5 waits on its first start until the test releases it
# (after killing the flow's process) and then returns without a "done" line.
KILLED_FLOWS = """
import os
import time
from pathlib import Path

from legato import flow, task
{runner_import}

JOURNAL = Path(os.environ["REMOTE_JOURNAL"])
RELEASE = Path(os.environ["REMOTE_RELEASE"])


def note(line):
    with open(JOURNAL, "a") as f:
        f.write(line + "\\n")


@task
def item(i: int) -> int:
    note(f"start item {{i}}")
    if i == 5 and JOURNAL.read_text().splitlines().count("start item 5") == 1:
        deadline = time.monotonic() + 60
        while not RELEASE.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the test kills the flow's process here
        return -1
    note(f"done item {{i}}")
    return i * i


@flow(task_runner={runner})
def fanout(n: int = 12) -> int:
    return sum(fut.result() for fut in item.map(range(n)))
"""


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a fresh interpreter (the shim and lazy-import checks)."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60)


def wait_until_true(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """`_waiting.wait_until` with the argument order these tests use."""
    wait_until(check, timeout=timeout, what=what)


def comparable(run: TaskRun) -> dict[str, Any]:
    """A task-run record without what differs between runners: ids, timings, host."""
    return {
        "call_key": run.call_key,
        "task_name": run.task_name,
        "name": run.name,
        "state": run.state,
        "attempts": run.attempts,
        "cached": run.cached,
        "error": run.error,
        "inputs": run.inputs,
        "dependencies": run.dependencies,
        "tags": run.tags,
        "cache_key": run.cache_key,
        "result_serializer": run.result_serializer,
        "has_result": run.has_result,
        "args_fingerprint": run.args_fingerprint,
        "parent": run.parent_task_run_id,
        "attempt_log": [(a.attempt, a.state, a.error) for a in run.attempt_log],
    }


def check_killed_run_resumes_without_resending(
    store: Store,
    legato_home: Path,
    tmp_path: Path,
    runner_import: str,
    runner: str,
    address: str = "",
) -> None:
    flows_file = tmp_path / "remote_flows.py"
    flows_file.write_text(
        textwrap.dedent(KILLED_FLOWS.format(runner_import=runner_import, runner=runner))
    )
    journal = tmp_path / "journal.txt"
    env = {
        **os.environ,
        "LEGATO_HOME": str(legato_home),
        "LEGATO_LOG_TO_CONSOLE": "0",
        "REMOTE_JOURNAL": str(journal),
        "REMOTE_RELEASE": str(tmp_path / "release"),
        "LEGATO_TEST_RUNNER_ADDRESS": address,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "legato", "run", f"{flows_file}:fanout", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def eleven_committed() -> bool:
            runs = store.list_flow_runs(limit=1)
            if not runs:
                return False
            return store.count_task_runs(runs[0].id).get(StateType.COMPLETED, 0) == 11

        def item_5_blocking() -> bool:
            # Its body must have started (and be waiting for the release) before the
            # kill: a body that first starts after the release returns -1.
            return journal.exists() and "start item 5" in journal.read_text().splitlines()

        wait_until(eleven_committed, timeout=60, what="all items but item 5 to complete")
        wait_until(item_5_blocking, timeout=60, what="item 5's body to start and block")
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        (tmp_path / "release").write_text("go")  # frees the abandoned body
    (run,) = store.list_flow_runs(limit=1)
    done_before = {
        t.call_key for t in store.list_task_runs(run.id) if t.state is StateType.COMPLETED
    }
    assert done_before == {f"item[{i}]" for i in range(12) if i != 5}
    resumed = subprocess.run(
        [sys.executable, "-m", "legato", "resume", run.id, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)
    assert data["state"] == "completed"
    assert data["result"] == sum(i * i for i in range(12))
    lines = journal.read_text().splitlines()
    for i in range(12):
        if i != 5:
            assert lines.count(f"start item {i}") == 1, (i, lines)
            assert lines.count(f"done item {i}") == 1, (i, lines)
    assert lines.count("start item 5") == 2
    assert lines.count("done item 5") == 1
