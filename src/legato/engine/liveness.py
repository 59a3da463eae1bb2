"""Is the process that runs a flow run still alive? Reads that answer "no" turn a
``running`` run into ``crashed`` as soon as anyone looks.

Same host: the owner's process id is checked, with its start time guarding
against a recycled pid. Other hosts: the run is crashed once its heartbeat is
older than the lease (``LEGATO_LEASE_SECONDS``, default 30).
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import replace
from datetime import timedelta
from functools import lru_cache

from legato.records import ErrorInfo, FlowRun, RunOwner
from legato.settings import env_float
from legato.states import StateType
from legato.store.base import Store


@lru_cache(maxsize=1)
def hostname() -> str:
    return socket.gethostname()


def process_start_time(pid: int) -> float | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields resume after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return float(fields[19])
    except (IndexError, ValueError):
        return None


def current_owner(token: str) -> RunOwner:
    pid = os.getpid()
    return RunOwner(token=token, host=hostname(), pid=pid, pid_started=process_start_time(pid))


def process_alive(owner: RunOwner) -> bool:
    if owner.pid == os.getpid():
        # This process, unless the run was recorded by an earlier process that had
        # the same pid (a restarted container often reuses the same small pid).
        return owner.pid_started is None or owner.pid_started == process_start_time(owner.pid)
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if owner.pid_started is not None:
        started = process_start_time(owner.pid)
        if started is not None and started != owner.pid_started:
            return False  # the pid was recycled by another process
        if started is None and os.path.isdir("/proc"):
            return False
    # A zombie has exited: it only waits for its parent to reap it.
    try:
        with open(f"/proc/{owner.pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        if stat[stat.rfind(")") + 2 :].startswith("Z"):
            return False
    except OSError:
        pass
    return True


def lease_seconds() -> float:
    return env_float("LEGATO_LEASE_SECONDS", 30.0)


def reconcile(store: Store, run: FlowRun) -> FlowRun:
    """The run as it really is: crashed if its process is gone, failed if its pause
    timed out. Writes the correction (compare-and-set) and returns the fresh record.

    Lease lapses are judged by the store's clock (`Store.clock`), never by this
    host's against the heartbeat writer's. On a store that cannot be written (a
    full disk, a read-only file or replica) the correction is shown, not stored,
    with one warning: reading must keep working.
    """
    if run.state is not StateType.RUNNING and run.state is not StateType.PAUSED:
        return run
    if run.state is StateType.RUNNING and run.owner is not None and run.work_queue is not None:
        # A worker's run: when its lease lapses another worker claims it and
        # resumes it, so a reader only shows it as crashed meanwhile and writes
        # nothing (a stored "crashed" would keep workers from taking it over).
        beat = run.heartbeat_at or run.start_time or run.created
        if store.clock() - beat > timedelta(seconds=lease_seconds()):
            return replace(
                run,
                state=StateType.CRASHED,
                state_message=f"no heartbeat for more than {lease_seconds():g}s; a worker "
                f"of queue '{run.work_queue}' takes it over and resumes it",
            )
        return run
    if run.state is StateType.RUNNING and run.owner is not None:
        owner = run.owner
        if owner.host == hostname():
            dead = not process_alive(owner)
            why = f"process {owner.pid} on {owner.host} exited while the run was running"
        else:
            beat = run.heartbeat_at or run.start_time or run.created
            dead = store.clock() - beat > timedelta(seconds=lease_seconds())
            why = (
                f"no heartbeat from {owner.host} (pid {owner.pid}) for more than "
                f"{lease_seconds():g}s"
            )
        if dead:
            message = why + "; resume it with `legato resume " + run.id + "`"
            return _correct(
                store,
                run,
                StateType.CRASHED,
                message,
                None,
                from_state=StateType.RUNNING,
                owner_token=owner.token,
            )
        return run
    if run.state is StateType.PAUSED and run.pause is not None and run.pause.timeout_at:
        if store.clock() <= run.pause.timeout_at:
            return run
        from legato.records import ErrorInfo

        message = f"the run was not resumed before its pause timeout ({run.pause.timeout_at})"
        error = ErrorInfo(type="PausedRunTimeoutError", message=message)
        return _correct(store, run, StateType.FAILED, message, error, from_state=StateType.PAUSED)
    return run


_warned_read_only = False


def _correct(
    store: Store,
    run: FlowRun,
    state: StateType,
    message: str,
    error: ErrorInfo | None,
    *,
    from_state: StateType,
    owner_token: str | None = None,
) -> FlowRun:
    """Store the corrected state; if the store refuses the write, show it unstored."""
    global _warned_read_only
    try:
        store.transition_flow_run(
            run.id,
            to_state=state,
            from_states=[from_state],
            now=store.clock(),
            message=message,
            error=error,
            expected_owner_token=owner_token,
        )
        return store.get_flow_run(run.id) or run
    except Exception as exc:  # a full disk, a read-only file: reads must go on
        if not _warned_read_only:
            _warned_read_only = True
            sys.stderr.write(
                f"legato: warning: could not record that flow run {run.id} is "
                f"{state.value} ({type(exc).__name__}: {exc}); showing it so without "
                f"storing it (is the store full or read-only?)\n"
            )
        return replace(run, state=state, state_message=message, error=error)
