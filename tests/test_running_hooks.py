"""``on_running`` hooks, as Prefect documents them: called when a flow run or a
task run starts running (each attempt), as option or decorator."""

from __future__ import annotations

from typing import Any

import pytest

from legato import flow, task
from legato.states import StateType
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")

seen: list[tuple[str, str, StateType]] = []


def note_flow(flow_: Any, run: Any, state: Any) -> None:
    seen.append(("flow", run.flow_name, state.type))


attempts = {"n": 0}


@task(retries=1)
def flaky() -> int:
    attempts["n"] += 1
    if attempts["n"] == 1:
        raise ValueError("first attempt fails")
    return 7


@flaky.on_running
def note_task(task_: Any, task_run: Any, state: Any) -> None:
    seen.append(("task", task_run.call_key, state.type))


@flow(on_running=[note_flow])
def watched() -> int:
    return flaky()


def broken(*_: Any) -> None:
    raise RuntimeError("hook is broken")


@flow(on_running=[broken])
def with_broken_running_hook() -> str:
    return "still ran"


def test_running_hooks_fire_for_flow_runs_and_each_task_attempt(default_store: Store) -> None:
    seen.clear()
    attempts["n"] = 0
    assert watched() == 7
    assert seen == [
        ("flow", "watched", StateType.RUNNING),
        ("task", "flaky[0]", StateType.RUNNING),
        ("task", "flaky[0]", StateType.RUNNING),
    ]


def test_a_running_hook_that_raises_is_logged_and_the_run_goes_on(default_store: Store) -> None:
    assert with_broken_running_hook() == "still ran"
    run = default_store.list_flow_runs(flow_name="with_broken_running_hook", limit=1)[0]
    logged = [log.message for log in default_store.read_logs(run.id)]
    assert any(
        "hook broken of flow 'with_broken_running_hook' raised RuntimeError" in m for m in logged
    )
