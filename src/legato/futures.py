"""Futures returned by ``task.submit`` and ``task.map``, and helpers to wait on them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from queue import Empty, SimpleQueue
from typing import Any, Generic, NamedTuple, TypeVar

from legato.errors import CancelledRun
from legato.states import State, StateType
from legato.task_runners import TaskHandle

R = TypeVar("R")


class LegatoFuture(Generic[R]):
    """The eventual result of a submitted task call."""

    __slots__ = ("_future", "_state", "call_key", "task_name", "task_run_id")

    def __init__(
        self,
        task_run_id: str,
        call_key: str,
        task_name: str,
        future: TaskHandle | None = None,
        state: State | None = None,
    ) -> None:
        self.task_run_id = task_run_id
        self.call_key = call_key
        self.task_name = task_name
        self._future = future
        self._state = state

    def __repr__(self) -> str:
        return f"LegatoFuture({self.call_key!r}, state={self.state.type.value})"

    def done(self) -> bool:
        return self._future is None or self._future.done()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run ends (or ``timeout`` seconds pass)."""
        if self._future is not None:
            self._future.wait(timeout)

    def wait_state(self) -> State:
        self.wait()
        return self.state

    @property
    def state(self) -> State:
        """The task run's current state; completed or failed ones carry the outcome."""
        if self._state is not None:
            return self._state
        fut = self._future
        if fut is None or not fut.done():
            return State(StateType.RUNNING, run_id=self.task_run_id)
        exc = fut.exception()
        if exc is None:
            self._state = State(StateType.COMPLETED, run_id=self.task_run_id, _value=fut.result())
        else:
            kind = StateType.CANCELLED if isinstance(exc, CancelledRun) else StateType.FAILED
            self._state = State(kind, message=str(exc), run_id=self.task_run_id, _exception=exc)
        return self._state

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's return value; raises its exception if it failed."""
        if self._future is not None and not self._future.wait(timeout):
            raise TimeoutError(
                f"task {self.call_key} did not finish within {timeout}s; "
                f"call result() again to keep waiting"
            )
        return self.state.result(raise_on_failure=raise_on_failure)


class LegatoFutureList(list[LegatoFuture[R]]):
    """What ``task.map`` returns: a plain list of futures, plus Prefect's ``wait`` and
    ``result`` over all of them."""

    def wait(self, timeout: float | None = None) -> None:
        """Block until every task run ends (or ``timeout`` seconds pass in all)."""
        wait(self, timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """Every task's return value, in input order; raises the first failure."""
        self.wait(timeout)
        return [future.result(0, raise_on_failure) for future in self]


class DoneAndNotDone(NamedTuple):
    done: set[LegatoFuture[Any]]
    not_done: set[LegatoFuture[Any]]


def wait(futures: Iterable[LegatoFuture[Any]], timeout: float | None = None) -> DoneAndNotDone:
    """Wait for all ``futures`` (or until ``timeout``); returns (done, not_done)."""
    futures = list(futures)
    deadline = None if timeout is None else time.monotonic() + timeout
    for f in futures:
        if deadline is None:
            f.wait()
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            f.wait(remaining)
    done = {f for f in futures if f.done()}
    return DoneAndNotDone(done, {f for f in futures if f not in done})


def _put_when_done(
    queue: SimpleQueue[LegatoFuture[Any]], future: LegatoFuture[Any]
) -> Callable[[TaskHandle], None]:
    def callback(_handle: TaskHandle) -> None:
        queue.put(future)

    return callback


def as_completed(
    futures: Iterable[LegatoFuture[Any]], timeout: float | None = None
) -> Iterator[LegatoFuture[Any]]:
    """Yield ``futures`` as they finish; raises TimeoutError if ``timeout`` passes first."""
    futures = list(dict.fromkeys(futures))  # each future once, as concurrent.futures does
    finished: SimpleQueue[LegatoFuture[Any]] = SimpleQueue()
    pending = 0
    for f in futures:
        if f._future is None:
            yield f
        else:
            pending += 1
            f._future.add_done_callback(_put_when_done(finished, f))
    deadline = None if timeout is None else time.monotonic() + timeout
    while pending:
        try:
            if deadline is None:
                item = finished.get()
            else:
                item = finished.get(timeout=max(deadline - time.monotonic(), 0))
        except Empty:
            raise TimeoutError(
                f"{pending} of {len(futures)} futures did not finish within {timeout}s"
            ) from None
        pending -= 1
        yield item


class unmapped:
    """Wrap an argument of ``task.map`` so it is passed whole to every call."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"unmapped({self.value!r})"


def resolve_futures(value: Any) -> Any:
    """Replace futures inside ``value`` (one level of containers) by their results."""
    if isinstance(value, LegatoFuture):
        return value.result()
    kind = type(value)
    if kind is LegatoFutureList:
        return [resolve_futures(v) for v in value]
    if kind in (list, tuple, set):
        return kind(resolve_futures(v) for v in value)
    if kind is dict:
        return {k: resolve_futures(v) for k, v in value.items()}
    return value


# Prefect's name for the same object, so code written for Prefect reads unchanged.
PrefectFuture = LegatoFuture


def _resolve_deep(value: Any, leaf: Callable[[LegatoFuture[Any]], Any]) -> Any:
    if isinstance(value, LegatoFuture):
        return leaf(value)
    kind = type(value)
    if kind is LegatoFutureList:
        return [_resolve_deep(v, leaf) for v in value]
    if kind in (list, tuple, set, frozenset):
        return kind(_resolve_deep(v, leaf) for v in value)
    if kind is dict:
        return {k: _resolve_deep(v, leaf) for k, v in value.items()}
    return value


def resolve_futures_to_states(expr: Any) -> Any:
    """``expr`` with every future inside it (in lists, tuples, sets and dicts, at any
    depth) replaced by its final `State`; waits for them. Other objects are kept as is."""
    return _resolve_deep(expr, LegatoFuture.wait_state)


def resolve_futures_to_results(expr: Any) -> Any:
    """``expr`` with every future inside it replaced by its result (raising the first
    failure met); waits for them. Other objects are kept as is."""
    return _resolve_deep(expr, LegatoFuture.result)
