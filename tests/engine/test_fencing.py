"""Fencing: a run someone else ended loses its owner, and its process stops writing.

A reader that finds a run's process dead marks the run crashed (and so does a
worker, a requeue, a cancel of a stuck run). If the process was alive after
all (frozen, cut off from the store for a while), it must not go on as if
nothing happened: its next heartbeat or write fails, it stops at once, writes
nothing more (above all not ``completed`` over the ``crashed``), and the flow
call returns a CRASHED state whose exception is `RunLostError`, with one line
on stderr. The crashed run can then be cancelled or resumed like any other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _engine_support import Journal, record, run_legato, wait_until

from legato import State, StateType, flow, task
from legato.client import Client
from legato.engine.context import FLOW_CONTEXT
from legato.engine.monitor import get_monitor
from legato.errors import RunLostError
from legato.records import utcnow
from legato.store.base import Store

RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def fast_monitor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monitor = get_monitor()
    monkeypatch.setattr(monitor, "interval", 0.05)
    monitor._wake.set()  # cut short a wait begun with the old interval
    monitor._wake.clear()
    RELEASE.clear()
    yield
    RELEASE.set()  # never leave a flow thread waiting


@task
def held() -> str:
    ctx = FLOW_CONTEXT.get()
    assert ctx is not None
    record(f"held started {ctx.run.id}")
    RELEASE.wait(30)
    record("held finished")
    return "held"


@task
def after() -> str:
    record("after ran")
    return "after"


@flow
def fenced() -> list[str]:
    return [held(), after()]


def start_fenced() -> tuple[threading.Thread, list[State]]:
    states: list[State] = []
    thread = threading.Thread(target=lambda: states.append(fenced(return_state=True)))
    thread.start()
    return thread, states


def mark_crashed_by_a_reader(store: Store, journal: Journal) -> str:
    """Wait until ``held`` runs, then do what a reader does to a run it thinks dead."""
    wait_until(lambda: any(line.startswith("held started") for line in journal.lines()))
    run_id = journal.lines()[0].split()[-1]
    run = store.get_flow_run(run_id)
    assert run is not None and run.owner is not None and run.state is StateType.RUNNING
    changed = store.transition_flow_run(
        run_id,
        to_state=StateType.CRASHED,
        from_states=[StateType.RUNNING],
        now=utcnow(),
        message="no heartbeat (marked by a reader in this test)",
        expected_owner_token=run.owner.token,
    )
    assert changed
    return run_id


def test_a_run_marked_crashed_stops_its_live_process_which_writes_nothing_more(
    default_store: Store, journal: Journal, capfd: pytest.CaptureFixture[str]
) -> None:
    thread, states = start_fenced()
    run_id = mark_crashed_by_a_reader(default_store, journal)
    crashed = default_store.get_flow_run(run_id)
    assert crashed is not None and crashed.owner is None  # the owner is released
    # The process learns it at its next heartbeat: two monitor rounds after the mark.
    monitor = get_monitor()
    seen = monitor.ticks
    wait_until(lambda: monitor.ticks >= seen + 2, what="two heartbeat rounds")
    RELEASE.set()
    thread.join(30)
    assert not thread.is_alive()

    (state,) = states  # a state, not an exception raised out of the flow call
    assert state.type is StateType.CRASHED
    error = state.result(raise_on_failure=False)
    assert isinstance(error, RunLostError) and error.run_id == run_id
    assert "after ran" not in journal.lines()  # it stopped at the next task boundary

    final = default_store.get_flow_run(run_id)
    assert final is not None and final.state is StateType.CRASHED  # never flipped back
    assert final.state_message == "no heartbeat (marked by a reader in this test)"
    recorded = {t.call_key: t.state for t in default_store.list_task_runs(run_id)}
    assert recorded.get("held[0]") is not StateType.COMPLETED  # its result was not written
    assert "after[0]" not in recorded
    lines = [line for line in capfd.readouterr().err.splitlines() if run_id in line]
    assert len(lines) == 1 and "no longer owns flow run" in lines[0], lines


def test_a_crashed_run_can_be_cancelled(default_store: Store, journal: Journal) -> None:
    thread, _ = start_fenced()
    run_id = mark_crashed_by_a_reader(default_store, journal)
    RELEASE.set()
    thread.join(30)
    cancelled = Client().cancel_run(run_id)
    assert cancelled.state is StateType.CANCELLED


def test_legato_cancel_cancels_a_crashed_run(
    default_store: Store, journal: Journal, legato_home: Path
) -> None:
    thread, _ = start_fenced()
    run_id = mark_crashed_by_a_reader(default_store, journal)
    RELEASE.set()
    thread.join(30)
    done = run_legato(legato_home, "cancel", run_id)
    assert done.returncode == 0, done.stderr
    assert f"run {run_id} cancelled" in done.stdout
    final = default_store.get_flow_run(run_id)
    assert final is not None and final.state is StateType.CANCELLED
