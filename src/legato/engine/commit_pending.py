"""The marker of a task call whose record is committed after its thread moves on.

`TaskCall.complete` returns a `CommitPending` for a call submitted to the
thread runner when nothing needs the commit to happen on the call's thread;
the runner attaches the call's handle to it instead of finishing the handle,
and the store's commit settles it (see docs/architecture.md, "Committing
without waiting").
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.task_runners.threads import TaskHandle


class CommitPending:
    """What a call returns when its record is committed after its thread moves on
    (`TaskCall.complete`): the runner attaches the call's handle instead of
    finishing it, and the commit settles it; whichever comes second finishes it."""

    __slots__ = ("_exception", "_handle", "_lock", "_settled", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handle: TaskHandle | None = None
        self._settled = False
        self._value: Any = None
        self._exception: BaseException | None = None

    def settle(self, value: Any, exception: BaseException | None) -> None:
        with self._lock:
            self._value = value
            self._exception = exception
            self._settled = True
            handle = self._handle
        if handle is not None:
            handle._finish(value, exception)

    def attach(self, handle: TaskHandle) -> None:
        with self._lock:
            if not self._settled:
                self._handle = handle
                return
        handle._finish(self._value, self._exception)
