"""A real process killed in the middle of eight model calls to a real (local)
OpenAI-compatible server, then resumed by `legato resume`: no answered call is
asked again, and the recorded cost is the sum of the answers (both backends)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from openai_server import Answer, OpenAIServer

from legato._llm_records import LLMUsage
from legato.ai.pricing import cost_of
from legato.states import StateType
from legato.store import get_default_store

pytestmark = pytest.mark.usefixtures("backend")

FLOW = """
from legato import ai, flow


@flow
def eight() -> float:
    total = 0.0
    for i in range(8):
        total += ai.call("openai:gpt-4o-mini", f"question {i}", retries=0).cost_usd
    return total
"""


class HoldingServer(OpenAIServer):
    """Answers every request but the ``hold_at``-th, which it never answers: the
    request is in flight when the client process is killed."""

    def __init__(self, hold_at: int | None) -> None:
        super().__init__([Answer.reply(f"answer {n}") for n in range(20)])
        self.hold_at = hold_at
        self.release = threading.Event()
        self.answered = 0

    def answer(self, handler: Any, body: dict[str, Any], answer: Any) -> None:
        if len(self.requests) == self.hold_at and not self.release.is_set():
            self.release.wait(30)
            handler.close_connection = True
            return
        super().answer(handler, body, answer)
        self.answered += 1


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    path = tmp_path / "eight_calls.py"
    path.write_text(FLOW)
    return path


@contextmanager
def _serve(hold_at: int | None) -> Iterator[HoldingServer]:
    server = HoldingServer(hold_at)
    server.start()
    try:
        yield server
    finally:
        server.release.set()
        server.stop()


def _env(server: OpenAIServer, **extra: str) -> dict[str, str]:
    env = dict(os.environ, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test-key")
    env.update(extra)
    return env


def _legato(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legato", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _wait_for(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _questions(server: OpenAIServer) -> list[str]:
    return [body["messages"][-1]["content"] for body in server.requests]


def _check_resumed_run(expected_questions: list[str], server: HoldingServer) -> None:
    store = get_default_store()
    (run,) = store.list_flow_runs()
    assert run.state is StateType.COMPLETED
    records = store.list_llm_calls(run.id)
    assert [(r.call_key, r.try_number) for r in records] == [(f"llm[{i}]", 1) for i in range(8)]
    one = cost_of("gpt-4o-mini", LLMUsage(10, 5))
    assert one is not None and one > 0
    assert [r.cost_usd for r in records] == [pytest.approx(one)] * 8
    result = store.get_flow_result(run.id)
    assert result is not None
    assert _questions(server) == expected_questions
    assert server.answered == 8


def test_killed_while_call_5_is_in_flight_resume_asks_only_the_unanswered_ones(
    flow_file: Path,
) -> None:
    with _serve(hold_at=5) as server:
        held = server
        proc = subprocess.Popen(
            [sys.executable, "-m", "legato", "run", f"{flow_file}:eight"],
            env=_env(server),
            cwd=flow_file.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(lambda: len(held.requests) == 5, "the fifth model request")
        finally:
            proc.kill()
            proc.wait(30)
        server.release.set()
        (run,) = get_default_store().list_flow_runs()
        resumed = _legato("resume", run.id, env=_env(server), cwd=flow_file.parent)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        # Call 5 was in flight when the process died: it is the one request made
        # twice; every answered call was answered once.
        expected = [f"question {i}" for i in range(5)] + [f"question {i}" for i in range(4, 8)]
        _check_resumed_run(expected, server)


def test_killed_after_call_5_was_answered_resume_makes_eight_requests_in_all(
    flow_file: Path,
) -> None:
    with _serve(hold_at=None) as server:
        crashed = _legato(
            "run",
            f"{flow_file}:eight",
            env=_env(server, LEGATO_FAULTS="kill-before=llm[4]"),
            cwd=flow_file.parent,
        )
        assert crashed.returncode == -9, crashed.stdout + crashed.stderr
        assert len(server.requests) == 5
        (run,) = get_default_store().list_flow_runs()
        resumed = _legato("resume", run.id, env=_env(server), cwd=flow_file.parent)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        _check_resumed_run([f"question {i}" for i in range(8)], server)
