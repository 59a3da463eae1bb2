"""A real `legato server` and `legato worker`, and helpers for the browser tests.

The fixtures that start them and open Debian's Chromium are in conftest.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from legato.client import Client
from legato.states import StateType

CHROMIUM = os.environ.get("LEGATO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root in CI containers
    "--disable-gpu",
    "--disable-background-networking",  # the machine has no internet: no lookups
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting until {what}")


class Stack:
    """A `legato server` and a `legato worker` over this test's store."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> None:
        log = open(self.tmp_path / f"{name}.log", "wb")  # noqa: SIM115
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "legato", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
        )
        log.close()

    def up(self) -> None:
        self.start("server", "server", "--port", str(self.port))
        self.start("worker", "worker", "--lease-seconds", "5")

        def answers() -> bool:
            try:
                return httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, "the server answers", timeout=60)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp_path.glob("*.log")))

    def down(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def screenshot(page: Any, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def expect_state(page: Any, state: str, timeout: float = 60_000) -> None:
    """The run page's badge reaches ``state`` by the page's own live updates."""
    page.wait_for_selector(f"#live h1 .badge.{state}", timeout=timeout)


def wait_state(client: Client, run_id: str, states: set[StateType], stack: Stack) -> None:
    def reached() -> bool:
        return client.get_run(run_id).state in states

    try:
        wait_for(reached, f"run {run_id} is one of {states}", timeout=90)
    except AssertionError:
        raise AssertionError(stack.logs()) from None
