"""Timeouts that hold even for code that ignores cancellation.

A sync call with a timeout runs on its own daemon thread; when time is up the
caller gets `TaskTimeoutError` at once and the thread is asked to stop with
an asynchronous exception (a `BaseException`, so ``except Exception`` in user
code cannot swallow it). Code stuck in C keeps running until it returns to
Python, but the flow has already moved on.
"""

from __future__ import annotations

import contextvars
import ctypes
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from legato.errors import TaskTimeoutError


class TimeoutInterrupt(BaseException):
    """Injected into a timed-out task thread to stop it."""


def run_with_timeout(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float,
    name: str,
    error: Callable[[str, float], BaseException] = TaskTimeoutError,
) -> Any:
    outcome: dict[str, Any] = {}
    finished = threading.Event()
    context = contextvars.copy_context()

    def target() -> None:
        import asyncio

        try:
            value = context.run(fn, *args, **kwargs)
            if inspect.iscoroutine(value):
                value = asyncio.run(value)
            outcome["value"] = value
        except TimeoutInterrupt:
            pass
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            finished.set()

    thread = threading.Thread(target=target, name=f"legato-timeout-{name}", daemon=True)
    thread.start()
    if not finished.wait(timeout):
        _interrupt(thread)
        raise error(name, timeout)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


async def run_async_with_timeout(
    awaitable: Awaitable[Any], timeout: float | None, name: str
) -> Any:
    import asyncio

    if timeout is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise TaskTimeoutError(name, timeout) from None


def _interrupt(thread: threading.Thread) -> None:
    ident = thread.ident
    if ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(TimeoutInterrupt)
    )
