"""Human in the loop: `pause_flow_run` suspends a run durably until it is resumed.

The flow body unwinds with a `PauseSignal`; the run is recorded as paused with
the input model it waits for, and the process is free. On resume the flow
body runs again: completed tasks replay, and this call, at the same pause
key, now finds the input that was given and returns it.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any, TypeVar, overload

from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT, current_scope
from legato.engine.entrypoints import object_ref
from legato.errors import ConfigurationError, PauseSignal, TaskCallError
from legato.records import PauseInfo, utcnow

T = TypeVar("T")


@overload
def pause_flow_run(
    wait_for_input: type[T],
    timeout: float | None = None,
    key: str | None = None,
    description: str | None = None,
) -> T: ...


@overload
def pause_flow_run(
    wait_for_input: None = None,
    timeout: float | None = None,
    key: str | None = None,
    description: str | None = None,
) -> None: ...


def pause_flow_run(
    wait_for_input: type[T] | None = None,
    timeout: float | None = None,
    key: str | None = None,
    description: str | None = None,
) -> T | None:
    """Pause the current flow run until it is resumed, optionally waiting for input.

    ``wait_for_input``: a `legato.RunInput` subclass (the input given on resume
    is validated against it and returned as an instance), or a plain type (str,
    int, float, bool, list, dict: the input is ``{"value": ...}`` and the value is
    returned, as Prefect does). In async flows ``await`` the call, as in Prefect
    (a call that is not awaited still pauses). ``timeout``: seconds
    after which a run still paused fails. ``key``: a stable name for this pause
    point (default: ``pause[n]`` for the n-th pause of the run). ``description``:
    what the person answering is asked (shown on the Approvals page above the form;
    stored as the description of the input's schema).
    """
    ctx = FLOW_CONTEXT.get()
    if ctx is None:
        raise TaskCallError("pause_flow_run() must be called inside a @flow function")
    task_ctx = TASK_CONTEXT.get()
    if task_ctx is not None and task_ctx.flow_ctx is ctx:
        raise TaskCallError(
            f"pause_flow_run() was called inside task '{task_ctx.task.name}'; pause in the "
            f"flow body instead (between task calls)"
        )
    schema = None
    model_ref = None
    model: Any = wait_for_input
    wrapped = False  # a plain type (str, int...): its value travels in a wrapper model
    if wait_for_input is not None:
        from pydantic import BaseModel

        from legato.input import WRAPPED_INPUTS

        if not (isinstance(wait_for_input, type) and issubclass(wait_for_input, BaseModel)):
            model = WRAPPED_INPUTS.get(wait_for_input)
            if model is None:
                plain = ", ".join(t.__name__ for t in WRAPPED_INPUTS)
                raise ConfigurationError(
                    f"pause_flow_run(wait_for_input=...) needs a subclass of legato.RunInput "
                    f"or one of {plain}, got {wait_for_input!r}"
                )
            wrapped = True
        schema = model.model_json_schema()
        model_ref = object_ref(model)
    if description is not None:
        schema = {**(schema or {}), "description": str(description)}
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(f"pause_flow_run(timeout={timeout!r}) must be > 0 seconds")
    ctx.check_cancelled()
    if key:
        ctx.claim_key("pause", key, f"pause key '{key}'")
    pause_key = key or current_scope(ctx).next_key("pause")
    if ctx.recorded is not None:
        found, value = ctx.store.get_run_input(ctx.run.id, pause_key)
        if found:
            if model is None:
                return _answer(None)
            given = model.model_validate({}) if value is None else model.model_validate_json(value)
            return _answer(given.value) if wrapped else given
    info = PauseInfo(
        key=pause_key,
        input_model=model_ref,
        input_schema=schema,
        timeout_at=utcnow() + timedelta(seconds=timeout) if timeout is not None else None,
    )
    raise PauseSignal(pause_key, info)


class _Ready:
    """What a resumed pause returns in async code, where Prefect's pause_flow_run is
    awaited: ``await`` gives the value at once. (A `RunInput` is awaitable itself.)"""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        yield from ()  # nothing to wait for
        return self.value

    def __repr__(self) -> str:
        return f"<resumed pause: await it for {self.value!r}>"


def _answer(value: Any) -> Any:
    """``value``, or in async code something ``await`` turns into ``value``."""
    import asyncio

    return _Ready(value) if asyncio._get_running_loop() is not None else value
