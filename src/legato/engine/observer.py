"""Observers: in-process listeners that watch a run as it executes (CLI progress).

Observers are called on the thread that did the work; keep them fast and
never let them raise (the engine ignores their exceptions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from legato.records import FlowRun, LogRecord, TaskRun
from legato.states import State


class RunObserver(Protocol):
    def flow_started(self, run: FlowRun) -> None: ...

    def flow_finished(self, run: FlowRun, state: State) -> None: ...

    def task_started(self, task_run: TaskRun) -> None: ...

    def task_finished(self, task_run: TaskRun) -> None: ...

    def log(self, record: LogRecord) -> None: ...


def notify(method: Callable[..., None], *args: Any) -> None:
    """Call an observer method; an observer's bug must never break the run it watches."""
    try:
        method(*args)
    except Exception:
        pass


class NullObserver:
    """An observer that does nothing; subclass it and override what you need."""

    def flow_started(self, run: FlowRun) -> None:
        pass

    def flow_finished(self, run: FlowRun, state: State) -> None:
        pass

    def task_started(self, task_run: TaskRun) -> None:
        pass

    def task_finished(self, task_run: TaskRun) -> None:
        pass

    def log(self, record: LogRecord) -> None:
        pass
