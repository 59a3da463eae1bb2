"""The run monitor: heartbeats, long tasks visible while they run, logs flushed meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from _engine_support import wait_until

from legato import StateType, flow, get_run_context, get_run_logger, task
from legato.engine.monitor import get_monitor
from legato.store import open_store
from legato.store.base import Store


@pytest.fixture(autouse=True)
def fast_monitor(monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = get_monitor()
    monkeypatch.setattr(monitor, "interval", 0.05)
    monitor._wake.set()  # cut short a wait begun with the old interval
    monitor._wake.clear()


@pytest.fixture
def reader(default_store: Store) -> Store:
    """A second connection to the same file, as another process would read it."""
    store = open_store(default_store.display_url)
    yield store  # type: ignore[misc]
    store.close()


def inside_task(check: Callable[[str, str], bool]) -> bool:
    """Run ``check(flow_run_id, task_run_id)`` from inside a task until it holds."""
    ctx = get_run_context()
    assert ctx.task_run_id is not None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if check(ctx.flow_run_id, ctx.task_run_id):
            return True
        time.sleep(0.02)
    return False


def test_heartbeat_is_renewed_while_the_run_executes(default_store: Store, reader: Store) -> None:
    @task
    def long() -> bool:
        ctx = get_run_context()
        first = reader.get_flow_run(ctx.flow_run_id)
        assert first is not None and first.heartbeat_at is not None

        def renewed(flow_run_id: str, _: str) -> bool:
            run = reader.get_flow_run(flow_run_id)
            return run is not None and run.heartbeat_at > first.heartbeat_at  # type: ignore[operator]

        return inside_task(renewed)

    @flow
    def f() -> bool:
        return long()

    assert f() is True


def test_long_task_is_recorded_as_running_while_it_runs(
    default_store: Store, reader: Store
) -> None:
    @task
    def long() -> bool:
        def visible(flow_run_id: str, task_run_id: str) -> bool:
            found = reader.get_task_run(task_run_id)
            return found is not None and found.state is StateType.RUNNING

        return inside_task(visible)

    @flow
    def f() -> bool:
        return long()

    assert f() is True
    (tr,) = default_store.list_task_runs(default_store.list_flow_runs()[0].id)
    assert tr.state is StateType.COMPLETED  # the final record replaced the running one


def test_logs_are_flushed_while_a_task_runs(default_store: Store, reader: Store) -> None:
    @task
    def chatty() -> bool:
        get_run_logger().info("halfway there")

        def flushed(flow_run_id: str, _: str) -> bool:
            return any(r.message == "halfway there" for r in reader.read_logs(flow_run_id))

        return inside_task(flushed)

    @flow
    def f() -> bool:
        return chatty()

    assert f() is True


def test_monitor_forgets_finished_runs(default_store: Store) -> None:
    @flow
    def quick() -> int:
        return 1

    quick()
    monitor = get_monitor()
    wait_until(lambda: not monitor._runs, timeout=5, what="the monitor to drop the run")
