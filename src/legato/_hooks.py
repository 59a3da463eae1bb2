"""`HookList`: the hooks of one kind on a task or flow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Hook = Callable[..., Any]
H = TypeVar("H", bound=Hook)


class HookList(list[Hook]):
    """A list of hooks that is also a decorator registering one, as Prefect writes it::

        @my_task.on_failure
        def alert(task, task_run, state): ...

    The decorated function is appended and returned unchanged.
    """

    def __call__(self, fn: H) -> H:
        given: object = fn  # checked at run time: untyped callers pass anything
        if not callable(given):
            from legato.errors import ConfigurationError

            raise ConfigurationError(
                f"a hook must be a function, got {type(fn).__name__}; "
                f"use it as a decorator on a function"
            )
        self.append(fn)
        return fn
