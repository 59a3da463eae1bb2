"""Attributes of the current task run: ``id``, ``name``, ``task_name``, ``parameters``,
``tags``, ``run_count`` and ``attempt``. Each is read when accessed; outside a task run it is
empty."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT, TaskRunContext


def _task() -> TaskRunContext | None:
    task_ctx = TASK_CONTEXT.get()
    if task_ctx is None or task_ctx.flow_ctx is not FLOW_CONTEXT.get():
        return None
    return task_ctx


def get_id() -> str | None:
    ctx = _task()
    return ctx.task_run_id if ctx is not None else None


def get_name() -> str | None:
    """The task run's name: its call key (``fetch[2]``), or the task's ``task_run_name``
    (a template filled from the call's arguments, or a callable's answer)."""
    ctx = _task()
    if ctx is None:
        return None
    if ctx.call is not None and ctx.task.task_run_name is not None:
        return str(ctx.task.run_name_for(ctx.call))
    return ctx.call_key


def get_parameters() -> dict[str, Any]:
    """The call's arguments by parameter name (a copy; empty outside a task run)."""
    ctx = _task()
    if ctx is None or ctx.call is None:
        return {}
    return dict(ctx.call.bound_parameters())


def get_task_name() -> str | None:
    ctx = _task()
    return str(ctx.task.name) if ctx is not None else None


def get_tags() -> list[str]:
    ctx = _task()
    return list(ctx.tags) if ctx is not None else []


def get_run_count() -> int:
    """The attempt in progress, 1 for the first (0 outside a task run)."""
    ctx = _task()
    return ctx.attempt if ctx is not None else 0


_GETTERS: dict[str, Callable[[], Any]] = {
    "id": get_id,
    "name": get_name,
    "task_name": get_task_name,
    "parameters": get_parameters,
    "tags": get_tags,
    "run_count": get_run_count,
    "attempt": get_run_count,
}


def __getattr__(name: str) -> Any:
    getter = _GETTERS.get(name)
    if getter is None:
        raise AttributeError(
            f"legato.runtime.task_run has no attribute {name!r}; available: "
            f"{', '.join(sorted(_GETTERS))}"
        )
    return getter()


def __dir__() -> list[str]:
    return sorted([*globals(), *_GETTERS])
