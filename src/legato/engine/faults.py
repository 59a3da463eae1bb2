"""Fault injection: crash, starve or freeze the engine at chosen points, on purpose.

The crash matrix in the test suite uses it to prove that a run killed at any
task boundary resumes to the result of an uncrashed run; it is also meant for
users testing their own flows. A plan comes from ``LEGATO_FAULTS`` (so a child
process inherits it) or from `inject` in Python. With no plan, the engine pays
one global lookup per task record.

``LEGATO_FAULTS`` holds ``;``-separated items:

- ``kill-before=KEY``: SIGKILL this process just before the final record of the
  task call at ``KEY`` is written (so the call ran but is not recorded);
- ``kill-after=KEY``: SIGKILL it just after that record is committed;
- ``KEY`` is a call key (``fetch[2]``, ``outer[0]/inner[1]``), optionally
  qualified by the flow's name (``etl:fetch[2]``), or ``#N`` for the N-th final
  task record this process writes (1-based);
- ``store-fail=N``: the next N store calls made by flow runs raise
  `StoreUnavailableError`, as an outage would (the first is the run's start);
  ``store-fail=N@KEY``: the outage begins with the final record at ``KEY``, so
  the run has started and ends crashed;
- ``freeze-heartbeat``: the run monitor stops heartbeating (a frozen process, as
  other processes see it);
- ``trace=PATH``: append one JSON line per final task record this process
  writes to ``PATH`` (``ordinal``, ``pid``, ``flow``, ``flow_run_id``,
  ``call_key``, ``state``), written before the record: the boundaries to aim
  ``kill-before`` / ``kill-after`` at.

A plan that cannot be parsed raises `ConfigurationError` when a flow run
starts (``import legato`` itself never fails because of it).

Two more faults exist only in Python plans (`inject`), for `legato.testing`:
``in_process`` turns the kills into a `SimulatedCrash` raised at the same point
(once; afterwards every record and `legato.testing.effects` call of the flow runs
that had started by then raises it too, as if their process were gone), and
``fail_calls`` makes chosen task calls raise an exception instead of running.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from legato.errors import ConfigurationError, SimulatedCrash, StoreUnavailableError

if TYPE_CHECKING:
    from legato.records import TaskRun
    from legato.store.base import Store

_SYNTAX = (
    "use kill-before=KEY, kill-after=KEY (KEY a call key, flow:KEY or #N), store-fail=N, "
    "store-fail=N@KEY, freeze-heartbeat or trace=PATH, separated by ';'"
)


@dataclass(frozen=True)
class FaultPlan:
    """Where to inject faults; see the module's docstring for the meaning of each field.

    ``store_fail_at`` is the key whose record starts the store outage (None: the
    outage starts with the next store call). ``in_process``: kills raise
    `SimulatedCrash` instead of sending SIGKILL. ``fail_calls``: (KEY, exception,
    times): the first ``times`` attempts of the call at KEY raise the exception
    instead of running.
    """

    kill_before: frozenset[str] = field(default_factory=frozenset)
    kill_after: frozenset[str] = field(default_factory=frozenset)
    store_failures: int = 0
    store_fail_at: str | None = None
    freeze_heartbeat: bool = False
    trace: str | None = None
    in_process: bool = False
    fail_calls: tuple[tuple[str, BaseException, int], ...] = ()

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """A plan from the ``LEGATO_FAULTS`` syntax; raises `ConfigurationError` on a typo."""
        before: set[str] = set()
        after: set[str] = set()
        failures = 0
        fail_at: str | None = None
        freeze = False
        trace: str | None = None
        for raw in spec.split(";"):
            item = raw.strip()
            if not item:
                continue
            name, _, value = item.partition("=")
            name, value = name.strip(), value.strip()
            count, _, at = value.partition("@")
            count, at = count.strip(), at.strip()
            if name == "kill-before" and _valid_key(value):
                before.add(value)
            elif name == "kill-after" and _valid_key(value):
                after.add(value)
            elif name == "store-fail" and count.isdigit() and ("@" not in value or _valid_key(at)):
                failures, fail_at = int(count), at or None
            elif name == "freeze-heartbeat" and not value and "=" not in item:
                freeze = True
            elif name == "trace" and value:
                trace = value
            else:
                raise ConfigurationError(
                    f"LEGATO_FAULTS item {item!r} is not understood; {_SYNTAX}"
                )
        return cls(frozenset(before), frozenset(after), failures, fail_at, freeze, trace)


def _valid_key(key: str) -> bool:
    if not key:
        return False
    if key.startswith("#"):
        return key[1:].isdigit() and int(key[1:]) > 0
    return True


class _Injector:
    """The active plan plus its counters (records written, store failures left)."""

    def __init__(self, plan: FaultPlan, error: ConfigurationError | None = None) -> None:
        self.plan = plan
        # A plan from the environment that could not be parsed: raised when a run starts.
        self.error = error
        self._lock = threading.Lock()
        self._records = 0
        self._failures_left = plan.store_failures
        self._outage = plan.store_fail_at is None  # the outage has begun
        # In-process crashes: fired once; the owner tokens of the runs that had
        # started by then (seen) are dead afterwards.
        self._fired = False
        self._seen: set[str] = set()
        self._dead: set[str] = set()
        self._failures_of = {key: times for key, _, times in plan.fail_calls}

    @staticmethod
    def _hit(keys: frozenset[str], record: TaskRun, flow_name: str, ordinal: int) -> bool:
        key = record.call_key
        return bool(keys) and (key in keys or f"{flow_name}:{key}" in keys or f"#{ordinal}" in keys)

    def before_record(self, record: TaskRun, flow_name: str) -> int:
        """Called before a task record is written; returns its ordinal (0: not final)."""
        plan = self.plan
        if plan.in_process:
            self.check_alive()
        if not record.state.is_final:
            return 0
        with self._lock:
            self._records += 1
            ordinal = self._records
            if plan.trace is not None:
                _append_trace(plan.trace, ordinal, record, flow_name)
            if not self._outage and plan.store_fail_at is not None:
                self._outage = self._hit(
                    frozenset((plan.store_fail_at,)), record, flow_name, ordinal
                )
        if self._hit(plan.kill_before, record, flow_name, ordinal):
            self._kill(f"before the record of {flow_name}:{record.call_key}")
        return ordinal

    def after_record(self, record: TaskRun, flow_name: str, ordinal: int) -> None:
        """Called once a task record is committed."""
        if ordinal and self._hit(self.plan.kill_after, record, flow_name, ordinal):
            self._kill(f"after the record of {flow_name}:{record.call_key}")

    def _kill(self, where: str) -> None:
        if not self.plan.in_process:
            _kill()
            return
        with self._lock:
            if self._fired:
                return
            self._fired = True
            self._dead = set(self._seen)
            self._dead.add(_owner_token())
        raise SimulatedCrash(where)

    @property
    def fired(self) -> bool:
        """Whether the in-process crash has happened."""
        return self._fired

    def check_alive(self) -> None:
        """Raise `SimulatedCrash` in a flow run that an in-process crash has ended."""
        token = _owner_token()
        with self._lock:
            if token in self._dead:
                raise SimulatedCrash("(the process is gone)")
            if token:
                self._seen.add(token)

    def task_fn(self, fn: Callable[..., Any], call_key: str, flow_name: str) -> Callable[..., Any]:
        """``fn``, or a stand-in that raises for the planned failures of this call."""
        plan = self.plan
        if not plan.fail_calls:
            return fn
        for key, exc, _ in plan.fail_calls:
            if key in (call_key, f"{flow_name}:{call_key}"):
                return self._failing(fn, key, exc)
        return fn

    def _take_failure(self, key: str) -> bool:
        with self._lock:
            left = self._failures_of.get(key, 0)
            if left <= 0:
                return False
            self._failures_of[key] = left - 1
            return True

    def _failing(self, fn: Callable[..., Any], key: str, exc: BaseException) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(fn):

            async def failing_async(*args: Any, **kwargs: Any) -> Any:
                if self._take_failure(key):
                    raise exc
                return await fn(*args, **kwargs)

            return failing_async

        def failing(*args: Any, **kwargs: Any) -> Any:
            if self._take_failure(key):
                raise exc
            return fn(*args, **kwargs)

        return failing

    def take_store_failure(self) -> bool:
        with self._lock:
            if not self._outage or self._failures_left <= 0:
                return False
            self._failures_left -= 1
            return True


def _append_trace(path: str, ordinal: int, record: TaskRun, flow_name: str) -> None:
    line = {
        "ordinal": ordinal,
        "pid": os.getpid(),
        "flow": flow_name,
        "flow_run_id": record.flow_run_id,
        "call_key": record.call_key,
        "state": record.state.value,
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _owner_token() -> str:
    """The owner token of the flow run executing here ("" outside any)."""
    from legato.engine.context import FLOW_CONTEXT

    ctx = FLOW_CONTEXT.get()
    return ctx.owner_token if ctx is not None else ""


class _FailingStore:
    """Wraps a store: while the outage lasts, every call raises `StoreUnavailableError`;
    then calls go through."""

    def __init__(self, store: Store, injector: _Injector) -> None:
        self._legato_inner = store
        self._legato_injector = injector

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._legato_inner, name)
        if not callable(attr):
            return attr
        injector = self._legato_injector

        def call(*args: Any, **kwargs: Any) -> Any:
            if injector.take_store_failure():
                raise StoreUnavailableError(
                    "(fault injection)", 0, f"LEGATO_FAULTS store-fail failed its call {name}"
                )
            return attr(*args, **kwargs)

        return call


def _from_env() -> _Injector | None:
    from legato.settings import faults_spec

    spec = faults_spec()
    if not spec:
        return None
    try:
        return _Injector(FaultPlan.parse(spec))
    except ConfigurationError as exc:
        return _Injector(FaultPlan(), error=exc)


# The plan in force: None (the usual case) costs the engine one lookup per record.
ACTIVE: _Injector | None = _from_env()


def check_plan() -> None:
    """Raise the `ConfigurationError` of an unparsable ``LEGATO_FAULTS``, before a run
    is created (so a typo leaves no run behind)."""
    injector = ACTIVE
    if injector is not None and injector.error is not None:
        raise injector.error


def wrap_store(store: Store) -> Store:
    """The store flow runs should use: ``store`` itself unless store failures are planned.

    Raises `ConfigurationError` when ``LEGATO_FAULTS`` could not be parsed.
    """
    injector = ACTIVE
    if injector is None:
        return store
    if injector.error is not None:
        raise injector.error
    if injector.plan.store_failures <= 0 or isinstance(store, _FailingStore):
        return store
    return _FailingStore(store, injector)  # type: ignore[return-value]


@contextmanager
def inject(plan: FaultPlan | str) -> Iterator[FaultPlan]:
    """Apply ``plan`` in this process for the duration of the block (tests, testing kit).

    It replaces any plan from ``LEGATO_FAULTS`` meanwhile; counters (``#N``,
    store failures) start afresh. Runs started inside the block keep its store
    failures until they end.
    """
    global ACTIVE
    parsed = FaultPlan.parse(plan) if isinstance(plan, str) else plan
    previous, ACTIVE = ACTIVE, _Injector(parsed)
    try:
        yield parsed
    finally:
        ACTIVE = previous
