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

    Returned by ``flow(..., return_state=True)`` and by ``future.state``.
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
