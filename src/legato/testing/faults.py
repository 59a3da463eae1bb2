"""Fault injection for users' flows: crash a run at a task boundary, fail a task
call, make the store unreachable. Each is a context manager over
`legato.engine.faults.inject`; nested ones combine.

`crash_at` simulates a process death in this process: at the chosen record it
raises `SimulatedCrash` (not an `Exception`, so the flow's code does not catch
it). The call it hits gets no final record (``before_commit``) or keeps the one
just committed (``after_commit``), as a killed process would leave it, and the
run ends crashed. Differences from a real SIGKILL: the engine records the run as
crashed at once (a killed process leaves it running until its liveness check
marks it crashed), ``finally`` blocks and transaction rollbacks of the flow's
code run, and tasks running in other threads go on until their next record or
`effects` call, which raises too. For a real kill run the flow in a subprocess
with ``LEGATO_FAULTS=kill-before=KEY`` (or ``kill-after=KEY``), e.g.
``legato run flows.py:pay`` then ``legato resume RUN``; ``crash_at(...,
process=True)`` gives the ``LEGATO_FAULTS`` value to use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from legato.engine import faults as _faults
from legato.engine.faults import FaultPlan
from legato.errors import ConfigurationError, SimulatedCrash

__all__ = ["SimulatedCrash", "crash_at", "fail_task", "store_outage"]

When = Literal["before_commit", "after_commit"]
WHEN = ("before_commit", "after_commit")


def _merged(plan: FaultPlan) -> FaultPlan:
    """``plan`` plus the plan already in force (an enclosing kit block)."""
    active = _faults.ACTIVE
    if active is None or active.error is not None:
        return plan
    old = active.plan
    return dataclasses.replace(
        plan,
        kill_before=old.kill_before | plan.kill_before,
        kill_after=old.kill_after | plan.kill_after,
        store_failures=plan.store_failures or old.store_failures,
        store_fail_at=plan.store_fail_at if plan.store_failures else old.store_fail_at,
        freeze_heartbeat=old.freeze_heartbeat or plan.freeze_heartbeat,
        trace=plan.trace or old.trace,
        in_process=old.in_process or plan.in_process,
        fail_calls=old.fail_calls + plan.fail_calls,
    )


def _check_key(key: str, what: str) -> None:
    if not isinstance(key, str) or not key.strip() or key != key.strip():
        raise ConfigurationError(
            f"{what}: {key!r} is not a call key; give one such as 'fetch[2]' or 'etl:fetch[2]'"
        )


@contextmanager
def crash_at(key: str, when: When = "before_commit", *, process: bool = False) -> Iterator[str]:
    """Crash the flow run at the final record of the task call ``key`` (``charge[0]``,
    ``flow:charge[0]``, or ``#N`` for the N-th final record), just before its commit
    or just after it. In process it raises `SimulatedCrash` once (run_flow returns
    the crashed run; resume it with `legato.testing.resume`). ``process=True``
    installs a real SIGKILL instead: use it only in a child process; the block gives
    the ``LEGATO_FAULTS`` value for such a child either way."""
    _check_key(key, "crash_at")
    if when not in WHEN:
        raise ConfigurationError(f"crash_at: when={when!r} is not one of {', '.join(WHEN)}")
    spec = f"kill-before={key}" if when == "before_commit" else f"kill-after={key}"
    plan = dataclasses.replace(FaultPlan.parse(spec), in_process=not process)
    with _faults.inject(_merged(plan)):
        yield spec


@contextmanager
def fail_task(key: str, exc: BaseException, times: int = 1) -> Iterator[None]:
    """Make the first ``times`` attempts of the task call ``key`` (``fetch[2]`` or
    ``flow:fetch[2]``) raise ``exc`` instead of running the task; retries, hooks and
    the records behave as for a real failure."""
    _check_key(key, "fail_task")
    if not isinstance(exc, BaseException):
        raise ConfigurationError(f"fail_task: {exc!r} is not an exception instance to raise")
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ConfigurationError(f"fail_task: times={times!r} must be a whole number >= 1")
    with _faults.inject(_merged(FaultPlan(fail_calls=((key, exc, times),)))):
        yield


@contextmanager
def store_outage(calls: int = 5, *, at: str | None = None) -> Iterator[None]:
    """Make the next ``calls`` store calls of flow runs raise `StoreUnavailableError`,
    as an outage would (``at``: the outage begins with the final record of the call
    at that key, so the run has started and ends crashed)."""
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
        raise ConfigurationError(f"store_outage: calls={calls!r} must be a whole number >= 1")
    if at is not None:
        _check_key(at, "store_outage(at=...)")
    with _faults.inject(_merged(FaultPlan(store_failures=calls, store_fail_at=at))):
        yield
