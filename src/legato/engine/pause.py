"""Human in the loop: `pause_flow_run` suspends a run durably until it is resumed.

The flow body unwinds with a `PauseSignal`; the run is recorded as paused with
the input model it waits for, and the process is free. On resume the flow
body runs again: completed tasks replay, and this call, at the same pause
key, now finds the input that was given and returns it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar, overload

from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT, current_scope
from legato.engine.entrypoints import object_ref
from legato.errors import ConfigurationError, PauseSignal, TaskCallError
from legato.records import PauseInfo, utcnow

T = TypeVar("T")


@overload
def pause_flow_run(
    wait_for_input: type[T], timeout: float | None = None, key: str | None = None
) -> T: ...


@overload
def pause_flow_run(
    wait_for_input: None = None, timeout: float | None = None, key: str | None = None
) -> None: ...


def pause_flow_run(
    wait_for_input: type[T] | None = None,
    timeout: float | None = None,
    key: str | None = None,
) -> T | None:
    """Pause the current flow run until it is resumed, optionally waiting for input.

    ``wait_for_input``: a `legato.RunInput` subclass; the input given on resume
    is validated against it and returned as an instance. ``timeout``: seconds
    after which a run still paused fails. ``key``: a stable name for this pause
    point (default: ``pause[n]`` for the n-th pause of the run).
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
    if wait_for_input is not None:
        from pydantic import BaseModel

        if not (isinstance(wait_for_input, type) and issubclass(wait_for_input, BaseModel)):
            raise ConfigurationError(
                f"pause_flow_run(wait_for_input=...) needs a subclass of legato.RunInput, "
                f"got {wait_for_input!r}"
            )
        schema = wait_for_input.model_json_schema()
        model_ref = object_ref(wait_for_input)
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(f"pause_flow_run(timeout={timeout!r}) must be > 0 seconds")
    ctx.check_cancelled()
    if key:
        ctx.claim_key("pause", key, f"pause key '{key}'")
    pause_key = key or current_scope(ctx).next_key("pause")
    if ctx.recorded is not None:
        found, value = ctx.store.get_run_input(ctx.run.id, pause_key)
        if found:
            if wait_for_input is None:
                return None
            model: Any = wait_for_input
            if value is None:
                return model.model_validate({})
            return model.model_validate_json(value)
    info = PauseInfo(
        key=pause_key,
        input_model=model_ref,
        input_schema=schema,
        timeout_at=utcnow() + timedelta(seconds=timeout) if timeout is not None else None,
    )
    raise PauseSignal(pause_key, info)
