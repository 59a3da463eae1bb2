"""Failures the engine must say out loud, and keep working through: a log flush or
heartbeat that fails, a retry condition that raises, a store that refuses writes
while being read, a sync task blocking an async flow past its timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from typing import Any

import pytest
from _engine_support import dead_pid, wait_until

import legato
from legato import flow, task
from legato.client import Client
from legato.engine import liveness
from legato.engine.context import FlowRunContext
from legato.engine.ids import new_id
from legato.engine.liveness import current_owner, hostname, reconcile
from legato.engine.monitor import RunMonitor
from legato.records import FlowRun, LogRecord, RunOwner, utcnow
from legato.states import StateType
from legato.store.base import Store


class Flaky:
    """A store whose named methods raise for their next ``failures`` calls."""

    def __init__(self, store: Store, failures: dict[str, int]) -> None:
        self._store = store
        self.failures = dict(failures)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in self.failures:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.failures[name] > 0:
                self.failures[name] -= 1
                raise sqlite3.OperationalError("database or disk is full")
            return attr(*args, **kwargs)

        return call


@flow
def placeholder() -> None:
    """Only its name and options are used: the tests drive contexts by hand."""


def running_context(store: Store) -> FlowRunContext:
    run = FlowRun(id=new_id(), flow_name="placeholder", name="r", state=StateType.PENDING)
    store.create_flow_run(run)
    token = new_id()
    started = store.start_flow_run(
        run.id, current_owner(token), from_states=[StateType.PENDING], now=store.clock()
    )
    assert started is not None
    return FlowRunContext(
        run=started, flow=placeholder, store=store, owner_token=token, recorded=None, observer=None
    )


def line(ctx: FlowRunContext, text: str) -> LogRecord:
    return LogRecord(flow_run_id=ctx.run.id, timestamp=utcnow(), level=20, message=text)


def test_log_lines_taken_for_a_failed_write_are_written_later(default_store: Store) -> None:
    flaky = Flaky(default_store, {"append_logs": 1})
    ctx = running_context(flaky)  # type: ignore[arg-type]
    ctx.add_log(line(ctx, "first"))
    monitor = RunMonitor()
    with pytest.raises(sqlite3.OperationalError):
        monitor.tick(ctx)
    ctx.add_log(line(ctx, "second"))
    monitor.tick(ctx)
    messages = [log.message for log in default_store.read_logs(ctx.run.id)]
    assert messages == ["first", "second"]  # nothing lost, order kept


def test_a_failing_heartbeat_is_reported_once_then_its_recovery(
    default_store: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    flaky = Flaky(default_store, {"heartbeat_flow_run": 3})
    ctx = running_context(flaky)  # type: ignore[arg-type]
    monitor = RunMonitor()
    monitor.interval = 0.02
    monitor.add(ctx)
    try:
        wait_until(lambda: flaky.failures["heartbeat_flow_run"] == 0, what="three failed beats")
        start = monitor.ticks
        wait_until(lambda: monitor.ticks >= start + 2, what="two ticks after the failures")
    finally:
        monitor.remove(ctx)
    err = capfd.readouterr().err
    assert err.count("heartbeat failed") == 1, err
    assert err.count("heartbeat works again") == 1, err
    logged = [log.message for log in default_store.read_logs(ctx.run.id)]
    assert any("heartbeat failed" in m for m in logged), logged


def never_retry(*_: Any) -> bool:
    raise KeyError("no such setting")


@task(retries=2, retry_condition_fn=never_retry)
def fails_once() -> None:
    raise ValueError("boom")


@flow
def with_bad_condition() -> None:
    fails_once()


def test_a_retry_condition_that_raises_is_reported_and_means_no_retry(
    default_store: Store,
) -> None:
    state = with_bad_condition(return_state=True)
    assert state.is_failed()
    run = default_store.list_flow_runs(flow_name="with_bad_condition", limit=1)[0]
    [task_run] = default_store.list_task_runs(run.id)
    assert task_run.attempts == 1
    logged = [log.message for log in default_store.read_logs(run.id)]
    assert any("retry_condition_fn of task 'fails_once' raised KeyError" in m for m in logged)


release = threading.Event()


@task
def blocks() -> str:
    release.wait(60)
    return "done"


@flow(timeout_seconds=0.5)
async def async_with_sync_task() -> str:
    return blocks()


def test_a_sync_task_in_an_async_flow_does_not_stop_its_timeout(default_store: Store) -> None:
    release.clear()
    try:
        state = asyncio.run(async_with_sync_task(return_state=True))
    finally:
        release.set()
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), legato.errors.FlowTimeoutError)


def running_run_of_dead_process(store: Store, *, host: str | None = None) -> FlowRun:
    run = FlowRun(id=new_id(), flow_name="gone", name="gone", state=StateType.PENDING)
    store.create_flow_run(run)
    owner = RunOwner(token=new_id(), host=host or hostname(), pid=dead_pid())
    started = store.start_flow_run(
        run.id, owner, from_states=[StateType.PENDING], now=store.clock()
    )
    assert started is not None
    return started


def test_reads_work_on_a_store_that_refuses_writes(
    default_store: Store, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(liveness, "_warned_read_only", False)
    runs = [running_run_of_dead_process(default_store) for _ in range(2)]
    full = Flaky(default_store, {"transition_flow_run": 10})
    shown = [reconcile(full, run) for run in runs]  # type: ignore[arg-type]
    assert [run.state for run in shown] == [StateType.CRASHED, StateType.CRASHED]
    # Shown, not stored; and said once, not once per run.
    assert all(default_store.get_flow_run(r.id).state is StateType.RUNNING for r in runs)
    err = capfd.readouterr().err
    assert err.count("could not record") == 1, err


def test_a_lapsed_lease_is_judged_by_the_stores_clock(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = running_run_of_dead_process(default_store, host="another-host")
    client = Client(default_store)
    assert client.get_run(run.id).state is StateType.RUNNING  # its heartbeat is fresh
    later = default_store.clock() + timedelta(seconds=liveness.lease_seconds() + 1)
    monkeypatch.setattr(default_store, "clock", lambda: later)
    assert client.get_run(run.id).state is StateType.CRASHED


def test_the_store_clock_is_close_to_this_hosts(default_store: Store) -> None:
    # On PostgreSQL the server's clock; both run on this machine, so they agree.
    assert abs((default_store.clock() - utcnow()).total_seconds()) < 1.0


def test_a_crashed_run_can_be_cancelled(default_store: Store) -> None:
    run = running_run_of_dead_process(default_store)
    client = Client(default_store)
    assert client.get_run(run.id).state is StateType.CRASHED
    assert client.cancel_run(run.id).state is StateType.CANCELLED
    cancelled = default_store.get_flow_run(run.id)
    assert cancelled is not None and cancelled.owner is None


def broken_hook(*_: Any) -> None:
    raise LookupError("no channel configured")


def working_hook(*_: Any) -> None:
    pass


@flow(on_completion=[broken_hook, working_hook])
def with_broken_hook() -> int:
    return 1


def test_a_flow_hook_that_raises_is_reported_in_the_runs_logs(
    default_store: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    assert with_broken_hook() == 1
    run = default_store.list_flow_runs(flow_name="with_broken_hook", limit=1)[0]
    logged = [log.message for log in default_store.read_logs(run.id)]
    expected = "hook broken_hook of flow 'with_broken_hook' raised LookupError"
    assert sum(expected in m for m in logged) == 1, logged
    assert capfd.readouterr().err.count(expected) == 1
