"""End-to-end CLI fixtures: the real ``legato`` in a subprocess, on a real SQLite store.

Each test gets its own LEGATO_HOME and a flows file written to a tmp folder.
The flows record side effects in files under ``$FLOW_STATE_DIR`` so tests can
count how often a task really ran, and read marker files to change behavior
between a run and its resume.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FLOWS = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from legato import RunInput, flow, get_run_logger, pause_flow_run, task

    STATE = Path(os.environ["FLOW_STATE_DIR"])


    def ran(name: str) -> None:
        with open(STATE / f"{name}.count", "a") as f:
            f.write("x")


    @task
    def add(a: int, b: int) -> int:
        get_run_logger().info("adding %s and %s", a, b)
        return a + b


    @flow
    def greet(n: int = 1, names: list[str] | None = None, label: str = "x") -> dict:
        get_run_logger().info("hello from greet")
        # A bare print, not captured as a log: --json must keep it off stdout.
        print("noise on stdout")
        return {"n": n, "names": names, "label": label, "total": add(n, 1)}


    @task
    def step(x: int) -> int:
        ran("step")
        return x * 10


    @task
    def check(value: int, note: str) -> int:
        if not (STATE / "fixed").exists():
            raise ValueError(f"not ready: {value}")
        return value + 1


    @flow
    def fragile(x: int = 4) -> int:
        # step is submitted so that its future carries a data edge into check.
        return check(step.submit(x), note="n" * 500)


    @flow
    def shifting() -> int:
        # The "shift" marker changes the argument at call key step[0] between runs.
        first = step(5 if (STATE / "shift").exists() else 1)
        if not (STATE / "fixed").exists():
            raise ValueError("not ready")
        return first


    class Approval(RunInput):
        approved: bool
        note: str = ""


    @flow
    def approval_flow() -> dict:
        step(1)
        answer = pause_flow_run(wait_for_input=Approval, key="approval")
        return {"approved": answer.approved, "note": answer.note}


    @flow
    def child(k: int) -> int:
        return add(k, k)


    @flow
    def parent() -> int:
        return child(2) + add(1, 1)


    @flow
    def opaque() -> object:
        return {1, 2, 3}  # pickled fine, but not JSON


    @task
    def wait_for_release() -> str:
        get_run_logger().info("waiting for release")
        import time

        for _ in range(400):
            if (STATE / "release").exists():
                break
            time.sleep(0.05)
        get_run_logger().info("released")
        return "done"


    @flow
    def slow() -> str:
        return wait_for_release()


    @flow
    def slow_two() -> int:
        wait_for_release()
        return add(1, 1)  # the task boundary where a cancellation takes effect


    def plain_function() -> None:
        pass


    not_a_flow = 42
    """
)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as one JSON document (fails if anything else is there)."""
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass
class Cli:
    """Runs ``python -m legato`` with this test's LEGATO_HOME, in the flows folder."""

    home: Path
    flows_dir: Path
    state_dir: Path

    @property
    def flows(self) -> str:
        return str(self.flows_dir / "flows.py")

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)  # LEGATO_DATABASE_URL is set when the test runs on PostgreSQL
        env.update(
            LEGATO_HOME=str(self.home),
            FLOW_STATE_DIR=str(self.state_dir),
            COLUMNS="200",
        )
        env.update(extra)
        return env

    def __call__(self, *args: str, timeout: float = 60, **env: str) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "legato", *args],
            cwd=self.flows_dir,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "legato", *args],
            cwd=self.flows_dir,
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_until_running(self, timeout: float = 30) -> str:
        """The id of the first run seen in state running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = self("runs", "--json", "--state", "running").json()
            if running:
                return str(running[0]["id"])
            time.sleep(0.1)
        raise AssertionError("no run showed up as running")

    def run_json(self, target: str, *args: str, expect: int = 0) -> dict[str, Any]:
        result = self("run", f"{self.flows}:{target}", "--json", *args)
        assert result.code == expect, str(result)
        data = result.json()
        assert isinstance(data, dict)
        return data

    def count(self, name: str) -> int:
        path = self.state_dir / f"{name}.count"
        return len(path.read_text()) if path.exists() else 0


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    flows_dir = tmp_path / "flows"
    state_dir = tmp_path / "state"
    flows_dir.mkdir()
    state_dir.mkdir()
    (flows_dir / "flows.py").write_text(FLOWS)
    return Cli(home=tmp_path / "home", flows_dir=flows_dir, state_dir=state_dir)
