"""Helpers shared by the engine tests: side-effect journals, waiting, subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from _waiting import wait_until as wait_until  # shared by every test folder


class Journal:
    """A file that tasks append one line to per side effect; counts survive processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, line: str) -> None:
        with open(self.path, "a") as f:
            f.write(line + "\n")

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def counts(self) -> Counter[str]:
        return Counter(self.lines())

    def count(self, line: str) -> int:
        return self.lines().count(line)


def record(line: str) -> None:
    """Append ``line`` to the current test's journal (for module-level tasks)."""
    Journal(Path(os.environ["LEGATO_TEST_JOURNAL"])).write(line)


def subprocess_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["LEGATO_HOME"] = str(home)
    env["LEGATO_LOG_TO_CONSOLE"] = "0"
    env.update(extra)
    return env


def legato_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "legato", *args]


def run_legato(
    home: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        legato_cmd(*args),
        env=subprocess_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
