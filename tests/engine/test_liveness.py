"""Crash detection: a running run whose process is gone reads as crashed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from _engine_support import dead_pid, wait_until

from legato.client import Client
from legato.engine.liveness import (
    current_owner,
    hostname,
    process_alive,
    process_start_time,
    reconcile,
)
from legato.records import FlowRun, RunOwner, utcnow
from legato.states import StateType
from legato.store.base import Store


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live child process (pid and start time known)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def running_run(store: Store, owner: RunOwner, *, beat_age: float = 0.0) -> FlowRun:
    run_id = uuid.uuid4().hex
    store.create_flow_run(FlowRun(id=run_id, flow_name="f", name="f", state=StateType.PENDING))
    started = store.start_flow_run(
        run_id,
        owner,
        from_states=[StateType.PENDING],
        now=utcnow() - timedelta(seconds=beat_age),
    )
    assert started is not None and started.state is StateType.RUNNING
    return started


def owner_for(pid: int, *, host: str | None = None, started: float | None = None) -> RunOwner:
    return RunOwner(token=uuid.uuid4().hex, host=host or hostname(), pid=pid, pid_started=started)


def test_dead_pid_on_this_host_reads_as_crashed(default_store: Store) -> None:
    pid = dead_pid()
    run = running_run(default_store, owner_for(pid))
    seen = reconcile(default_store, run)
    assert seen.state is StateType.CRASHED
    assert f"process {pid} on {hostname()} exited" in (seen.state_message or "")
    assert f"legato resume {run.id}" in (seen.state_message or "")
    assert seen.end_time is not None
    # The correction was written: a plain store read agrees now.
    stored = default_store.get_flow_run(run.id)
    assert stored is not None and stored.state is StateType.CRASHED


def test_client_reads_reconcile(default_store: Store) -> None:
    run = running_run(default_store, owner_for(dead_pid()))
    assert Client().get_run(run.id).state is StateType.CRASHED
    run2 = running_run(default_store, owner_for(dead_pid()))
    listed = {r.id: r.state for r in Client().list_runs()}
    assert listed[run2.id] is StateType.CRASHED
    crashed = Client().list_runs(states=[StateType.CRASHED])
    assert {r.id for r in crashed} == {run.id, run2.id}


def test_alive_pid_is_not_crashed(default_store: Store, sleeper: subprocess.Popen[bytes]) -> None:
    owner = owner_for(sleeper.pid, started=process_start_time(sleeper.pid))
    run = running_run(default_store, owner)
    assert process_alive(owner)
    assert reconcile(default_store, run).state is StateType.RUNNING
    assert Client().get_run(run.id).state is StateType.RUNNING


def test_alive_pid_without_a_recorded_start_time_is_not_crashed(
    default_store: Store, sleeper: subprocess.Popen[bytes]
) -> None:
    run = running_run(default_store, owner_for(sleeper.pid, started=None))
    assert reconcile(default_store, run).state is StateType.RUNNING


def test_recycled_pid_reads_as_crashed(
    default_store: Store, sleeper: subprocess.Popen[bytes]
) -> None:
    real_start = process_start_time(sleeper.pid)
    assert real_start is not None
    # Same pid, but the process that recorded the run started at another time.
    owner = owner_for(sleeper.pid, started=real_start - 100)
    assert not process_alive(owner)
    run = running_run(default_store, owner)
    assert reconcile(default_store, run).state is StateType.CRASHED


def test_this_process_is_alive(default_store: Store) -> None:
    owner = current_owner("token")
    assert owner.pid == os.getpid()
    assert owner.pid_started == process_start_time(os.getpid())
    assert process_alive(owner)
    run = running_run(default_store, owner)
    assert reconcile(default_store, run).state is StateType.RUNNING


def test_recycled_pid_that_is_now_this_process_reads_as_crashed(default_store: Store) -> None:
    # In a container restarted on the same volume, the new process often gets the
    # same small pid as the one that died while running the run.
    own_start = process_start_time(os.getpid())
    assert own_start is not None
    owner = owner_for(os.getpid(), started=own_start - 100)
    assert not process_alive(owner)
    run = running_run(default_store, owner)
    assert reconcile(default_store, run).state is StateType.CRASHED


def test_zombie_reads_as_dead(default_store: Store) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Not reaped yet: the pid still exists, as a zombie, once the child exits.
        def zombie() -> bool:
            with open(f"/proc/{proc.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"

        wait_until(zombie, timeout=10, what=f"child {proc.pid} to become a zombie")
        owner = owner_for(proc.pid, started=process_start_time(proc.pid))
        assert not process_alive(owner)
    finally:
        proc.wait()


def test_other_host_is_judged_by_its_heartbeat(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_LEASE_SECONDS", "2")
    # A pid that is alive here means nothing for another host.
    fresh = running_run(default_store, owner_for(os.getpid(), host="elsewhere"), beat_age=0.5)
    stale = running_run(default_store, owner_for(os.getpid(), host="elsewhere"), beat_age=5)
    assert Client().get_run(fresh.id).state is StateType.RUNNING
    seen = Client().get_run(stale.id)
    assert seen.state is StateType.CRASHED
    message = seen.state_message or ""
    assert "no heartbeat from elsewhere" in message and "2s" in message


def test_heartbeat_keeps_another_hosts_run_alive(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_LEASE_SECONDS", "2")
    owner = owner_for(12345, host="elsewhere")
    run = running_run(default_store, owner, beat_age=5)
    reply = default_store.heartbeat_flow_run(run.id, owner.token, utcnow())
    assert reply.still_owner
    assert Client().get_run(run.id).state is StateType.RUNNING


def test_finished_and_paused_runs_are_left_alone(default_store: Store) -> None:
    owner = owner_for(dead_pid())
    run = running_run(default_store, owner)
    default_store.finish_flow_run(run.id, owner.token, state=StateType.COMPLETED, now=utcnow())
    completed = default_store.get_flow_run(run.id)
    assert completed is not None
    assert reconcile(default_store, completed).state is StateType.COMPLETED


def test_reconcile_does_not_overwrite_a_newer_owner(default_store: Store) -> None:
    # The run looked dead to a reader, but meanwhile someone resumed it under a new owner.
    stale_view = running_run(default_store, owner_for(dead_pid()))
    default_store.transition_flow_run(
        stale_view.id,
        to_state=StateType.CRASHED,
        from_states=[StateType.RUNNING],
        now=utcnow(),
    )
    new_owner = current_owner("new-token")
    restarted = default_store.start_flow_run(
        stale_view.id, new_owner, from_states=[StateType.CRASHED], now=utcnow()
    )
    assert restarted is not None
    seen = reconcile(default_store, stale_view)  # acts on the old record
    assert seen.state is StateType.RUNNING
    assert seen.owner is not None and seen.owner.token == "new-token"


def test_invalid_lease_setting_is_a_clear_error(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from legato.errors import ConfigurationError

    run = running_run(default_store, owner_for(1, host="elsewhere"))
    monkeypatch.setenv("LEGATO_LEASE_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match="LEGATO_LEASE_SECONDS='soon' is not a number"):
        reconcile(default_store, run)
