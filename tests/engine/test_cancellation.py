"""Cancellation: a running run stops at its next task boundary and ends ``cancelled``.

The task in flight when the request arrives waits until the engine has learned
of the request (its flow run context says so; the run monitor sets it on its
next heartbeat), then finishes normally: the test is then deterministic, with
no fixed sleeps.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _engine_support import (
    Journal,
    legato_cmd,
    record,
    run_legato,
    subprocess_env,
    wait_until,
)

from legato import FlowCancelled, State, StateType, ThreadPoolTaskRunner, flow, task
from legato.client import Client
from legato.engine.context import FLOW_CONTEXT
from legato.engine.monitor import get_monitor
from legato.records import FlowRun
from legato.store.base import Store


@pytest.fixture(autouse=True)
def fast_monitor(monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = get_monitor()
    monkeypatch.setattr(monitor, "interval", 0.05)
    monitor._wake.set()  # cut short a wait begun with the old interval
    monitor._wake.clear()


def wait_for_cancel_request(timeout: float = 10) -> bool:
    """Inside a task: block until the engine knows the run is to be cancelled."""
    ctx = FLOW_CONTEXT.get()
    assert ctx is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ctx.cancel_requested:
            return True
        time.sleep(0.01)
    return False


@task
def in_flight() -> str:
    record("in_flight started")
    noticed = wait_for_cancel_request()
    record(f"in_flight finished noticed={noticed}")
    return "finished"


@task
def later() -> None:
    record("later ran")


def note_cancel(f: Any, run: FlowRun, state: State) -> None:
    record(f"on_cancellation {f.name} {state.type.value} {run.state.value}")


@flow(on_cancellation=[note_cancel])
def cancellable() -> str:
    record("body")
    in_flight()
    later()
    return "not cancelled"


def cancel_from_thread(store: Store, journal: Journal) -> threading.Thread:
    def cancel() -> None:
        wait_until(lambda: journal.count("in_flight started") == 1, what="in_flight")
        (run,) = store.list_flow_runs(limit=1)
        after = Client().cancel_run(run.id)
        record(f"cancel requested, run is {after.state.value}")

    thread = threading.Thread(target=cancel)
    thread.start()
    return thread


def test_cancel_from_another_thread_stops_at_the_next_task(
    default_store: Store, journal: Journal
) -> None:
    canceller = cancel_from_thread(default_store, journal)
    with pytest.raises(FlowCancelled) as info:
        cancellable()
    canceller.join()
    run = default_store.list_flow_runs()[0]
    assert info.value.run_id == run.id
    assert run.state is StateType.CANCELLED
    assert run.end_time is not None
    assert journal.lines() == [
        "body",
        "in_flight started",
        "cancel requested, run is running",  # a running run stops at a task boundary
        "in_flight finished noticed=True",
        "on_cancellation cancellable cancelled cancelled",
    ]
    tasks = {t.call_key: t for t in default_store.list_task_runs(run.id)}
    assert tasks["in_flight[0]"].state is StateType.COMPLETED  # the running task finished
    assert "later[0]" not in tasks or tasks["later[0]"].state is StateType.CANCELLED


def test_cancelled_state_with_return_state(default_store: Store, journal: Journal) -> None:
    canceller = cancel_from_thread(default_store, journal)
    state = cancellable(return_state=True)
    canceller.join()
    assert state.is_cancelled()
    with pytest.raises(FlowCancelled):
        state.result()


def test_cancel_stops_queued_mapped_tasks(default_store: Store, journal: Journal) -> None:
    @task
    def item(i: int) -> int:
        record(f"item {i}")
        if i == 0:
            wait_for_cancel_request()
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def fan() -> int:
        return sum(fut.result() for fut in item.map(range(5)))

    def cancel() -> None:
        wait_until(lambda: journal.count("item 0") == 1, what="item 0")
        Client().cancel_run(default_store.list_flow_runs(limit=1)[0].id)

    canceller = threading.Thread(target=cancel)
    canceller.start()
    with pytest.raises(FlowCancelled):
        fan()
    canceller.join()
    assert journal.lines() == ["item 0"]  # items queued behind it never started
    run = default_store.list_flow_runs()[0]
    assert run.state is StateType.CANCELLED
    states = {t.call_key: t.state for t in default_store.list_task_runs(run.id)}
    assert states.pop("item[0]") is StateType.COMPLETED
    assert all(s is StateType.CANCELLED for s in states.values())


def test_cancel_stops_before_a_subflow(default_store: Store, journal: Journal) -> None:
    @flow
    def child() -> None:
        record("child ran")

    @flow
    def parent() -> None:
        in_flight()
        child()

    canceller = cancel_from_thread(default_store, journal)
    with pytest.raises(FlowCancelled):
        parent()
    canceller.join()
    assert "child ran" not in journal.lines()
    assert [r.flow_name for r in default_store.list_flow_runs()] == ["parent"]


def test_a_cancelled_run_can_be_resumed(default_store: Store, journal: Journal) -> None:
    canceller = cancel_from_thread(default_store, journal)
    with pytest.raises(FlowCancelled):
        cancellable()
    canceller.join()
    run = default_store.list_flow_runs()[0]
    from legato import resume_flow_run

    assert resume_flow_run(run.id) == "not cancelled"
    assert journal.count("in_flight started") == 1  # replayed
    assert journal.count("later ran") == 1


def test_cancel_a_finished_run_changes_nothing(default_store: Store) -> None:
    @flow
    def quick() -> int:
        return 1

    quick()
    run = default_store.list_flow_runs()[0]
    assert Client().cancel_run(run.id).state is StateType.COMPLETED


# --- real processes: `legato cancel` against `legato run` ------------------------------

FLOWS = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from legato import flow, task
    from legato.engine.context import FLOW_CONTEXT

    JOURNAL = Path(os.environ["LEGATO_TEST_JOURNAL"])


    def note(line):
        with open(JOURNAL, "a") as f:
            f.write(line + "\\n")


    @task
    def in_flight() -> str:
        note("in_flight started")
        ctx = FLOW_CONTEXT.get()
        deadline = time.monotonic() + 20
        while not ctx.cancel_requested and time.monotonic() < deadline:
            time.sleep(0.01)
        note(f"in_flight finished noticed={ctx.cancel_requested}")
        return "finished"


    @task
    def later() -> None:
        note("later ran")


    def on_cancel(flow, run, state):
        note(f"on_cancellation {state.type.value}")


    @flow(on_cancellation=[on_cancel])
    def cancellable() -> str:
        in_flight()
        later()
        return "not cancelled"
    """
)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_legato_cancel_stops_a_legato_run(
    tmp_path: Path,
    legato_home: Path,
    default_store: Store,
    journal: Journal,
    procs: list[subprocess.Popen[str]],
) -> None:
    flows = tmp_path / "cancel_flows.py"
    flows.write_text(FLOWS)
    proc = subprocess.Popen(
        legato_cmd("run", f"{flows}:cancellable", "--json"),
        env=subprocess_env(legato_home, LEGATO_HEARTBEAT_SECONDS="0.1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs.append(proc)
    wait_until(lambda: journal.count("in_flight started") == 1, what="in_flight")
    (run,) = default_store.list_flow_runs(limit=5)
    cancel = run_legato(legato_home, "cancel", run.id[:12])
    assert cancel.returncode == 0, cancel.stderr
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err  # cancelled exits 1
    data = json.loads(out)
    assert (data["id"], data["state"]) == (run.id, "cancelled")
    assert journal.lines() == [
        "in_flight started",
        "in_flight finished noticed=True",
        "on_cancellation cancelled",
    ]
    final = default_store.get_flow_run(run.id)
    assert final is not None and final.state is StateType.CANCELLED
    tasks = {t.call_key: t.state for t in default_store.list_task_runs(run.id)}
    assert tasks["in_flight[0]"] is StateType.COMPLETED
    assert tasks.get("later[0]", StateType.CANCELLED) is StateType.CANCELLED


def test_cancel_during_a_task_retry_ends_the_task_run(default_store: Store) -> None:
    attempts: list[int] = []

    @task(retries=3, retry_delay_seconds=0.05)
    def flaky() -> None:
        attempts.append(1)
        ctx = FLOW_CONTEXT.get()
        assert ctx is not None
        Client().cancel_run(ctx.run.id)
        assert wait_for_cancel_request()
        raise ConnectionError("flaky")

    @flow
    def f() -> None:
        flaky()

    with pytest.raises(FlowCancelled):
        f()
    assert attempts == [1]  # no retry after the cancel request
    run = default_store.list_flow_runs()[0]
    assert run.state is StateType.CANCELLED
    (tr,) = default_store.list_task_runs(run.id)
    assert tr.state is not StateType.RUNNING  # no task run left running in a finished run
    assert tr.end_time is not None


def test_cancel_during_a_retry_delay_prevents_the_next_attempt(
    default_store: Store, journal: Journal
) -> None:
    @task(retries=2, retry_delay_seconds=0.5)
    def flaky() -> None:
        record("attempt")
        raise ConnectionError("flaky")

    @flow
    def f() -> None:
        flaky()

    def cancel_during_the_delay() -> None:
        wait_until(lambda: journal.count("attempt") == 1, what="the first attempt")
        Client().cancel_run(default_store.list_flow_runs(limit=1)[0].id)

    canceller = threading.Thread(target=cancel_during_the_delay)
    canceller.start()
    with pytest.raises(FlowCancelled):
        f()
    canceller.join()
    assert journal.count("attempt") == 1
    run = default_store.list_flow_runs()[0]
    (tr,) = default_store.list_task_runs(run.id)
    assert tr.state is StateType.CANCELLED
