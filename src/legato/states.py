"""Run states: the `StateType` enum and the `State` object a run ends in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class StateType(StrEnum):
    """The state of a flow run or task run, as shown in JSON and in the CLI."""

    SCHEDULED = "scheduled"
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CRASHED = "crashed"
    CANCELLED = "cancelled"
    PAUSED = "paused"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    def __str__(self) -> str:
        return self.value


FINAL_STATES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)
# A run in one of these states can be re-executed by `resume`.
RESUMABLE_STATES = frozenset(
    {StateType.FAILED, StateType.CRASHED, StateType.PAUSED, StateType.CANCELLED}
)

_NO_RESULT = object()


@dataclass(frozen=True)
class State:
    """The state a run ended in, with its result or its exception.

    Returned by ``my_flow(..., return_state=True)``, ``my_task(..., return_state=True)``
    and ``future.state``; built by `Completed`, `Failed` and the other constructors below.
    """

    type: StateType
    message: str | None = None
    timestamp: datetime | None = None
    run_id: str | None = None
    _value: Any = field(default=_NO_RESULT, repr=False, compare=False)
    _exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.type.value.capitalize()

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_pending(self) -> bool:
        return self.type in (StateType.PENDING, StateType.SCHEDULED)

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_final(self) -> bool:
        return self.type.is_final

    def result(self, raise_on_failure: bool = True) -> Any:
        """The return value; for a failed state, raise (or return) its exception."""
        if self._exception is not None:
            if raise_on_failure:
                raise self._exception
            return self._exception
        if self._value is _NO_RESULT:
            from legato.errors import ResultNotAvailableError

            raise ResultNotAvailableError(
                f"state {self.type.value} of run {self.run_id} carries no result"
            )
        return self._value


# --- constructors, named as in Prefect's ``prefect.states`` -------------------


def _make(type_: StateType, message: str | None, data: Any, timestamp: datetime | None) -> State:
    if isinstance(data, BaseException):
        return State(type_, message=message or str(data), timestamp=timestamp, _exception=data)
    if data is _NO_RESULT and type_ in (StateType.FAILED, StateType.CRASHED):
        # A failure without its exception: result() still raises, with the message.
        from legato.errors import FlowRunFailed

        error = FlowRunFailed(message or f"the run ended {type_.value}")
        return State(type_, message=message, timestamp=timestamp, _exception=error)
    return State(type_, message=message, timestamp=timestamp, _value=data)


def Completed(
    message: str | None = None, data: Any = _NO_RESULT, timestamp: datetime | None = None
) -> State:
    """A completed state; ``data`` is what ``result()`` returns."""
    return _make(StateType.COMPLETED, message, data, timestamp)


def Failed(
    message: str | None = None, data: Any = _NO_RESULT, timestamp: datetime | None = None
) -> State:
    """A failed state; ``result()`` raises ``data`` when it is an exception, else an error
    carrying ``message``."""
    return _make(StateType.FAILED, message, data, timestamp)


def Crashed(
    message: str | None = None, data: Any = _NO_RESULT, timestamp: datetime | None = None
) -> State:
    """A crashed state (the process or the engine failed); ``result()`` raises."""
    return _make(StateType.CRASHED, message, data, timestamp)


def Cancelled(
    message: str | None = None, data: Any = _NO_RESULT, timestamp: datetime | None = None
) -> State:
    """A cancelled state."""
    return _make(StateType.CANCELLED, message, data, timestamp)


def Pending(
    message: str | None = None, data: Any = _NO_RESULT, timestamp: datetime | None = None
) -> State:
    """A pending state (not started yet)."""
    return _make(StateType.PENDING, message, data, timestamp)


def Scheduled(
    message: str | None = None, data: Any = _NO_RESULT, timestamp: datetime | None = None
) -> State:
    """A scheduled state (due at a later time)."""
    return _make(StateType.SCHEDULED, message, data, timestamp)


def Running(
    message: str | None = None, data: Any = _NO_RESULT, timestamp: datetime | None = None
) -> State:
    """A running state."""
    return _make(StateType.RUNNING, message, data, timestamp)


def Paused(
    message: str | None = None, data: Any = _NO_RESULT, timestamp: datetime | None = None
) -> State:
    """A paused state (waiting to be resumed)."""
    return _make(StateType.PAUSED, message, data, timestamp)
