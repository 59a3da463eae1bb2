"""A task or flow that returns a `State` ends in that state, as Prefect documents
(``return Completed(message="skipped: nothing new")``, ``return Failed(...)``).

`ending_of` says what such a return means for the run; the task and flow
engines record it like any other outcome (a returned failure is final: it is
the code's own verdict, so it takes no retry).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from legato.errors import FlowRunFailed, TaskCallError
from legato.states import State, StateType

_NO_VALUE: Any = State(StateType.COMPLETED)._value  # the "no result" marker of State


class Ending(NamedTuple):
    """How a run that returned a state ends: its final state type, the value a
    completed one returns, the exception a failed one raises, and its message."""

    type: StateType
    value: Any
    error: BaseException | None
    message: str | None


def is_state(value: Any) -> bool:
    return type(value) is State


def ending_of(state: State, what: str) -> Ending:
    """The ending for ``what`` (``task 'x'``, ``flow 'y'``) returning ``state``."""
    kind = state.type
    if kind is StateType.COMPLETED:
        value = None if state._value is _NO_VALUE else state._value
        return Ending(kind, value, None, state.message)
    if kind in (StateType.FAILED, StateType.CRASHED):
        error = state._exception or FlowRunFailed(state.message or f"{what} returned a failure")
        return Ending(StateType.FAILED, None, error, state.message or str(error))
    if kind is StateType.CANCELLED:
        return Ending(kind, None, None, state.message)
    error = TaskCallError(
        f"{what} returned a {kind.value} state; return a final one: Completed(...), "
        f"Failed(...) or Cancelled(...) from legato.states"
    )
    return Ending(StateType.FAILED, None, error, str(error))
