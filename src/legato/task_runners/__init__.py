"""Task runners: where submitted task calls execute.

`ThreadPoolTaskRunner` (the default) runs them on threads of the flow's
process. `ProcessPoolTaskRunner`, `DaskTaskRunner` and `RayTaskRunner` run
only the function bodies elsewhere; the flow's process records everything
(`legato.task_runners.remote`, `legato.engine.remote`). The Dask and Ray
runners load their libraries (extras ``legato[dask]``, ``legato[ray]``) only
when first named.
"""

from __future__ import annotations

from typing import Any

from legato.task_runners.processes import ProcessPoolTaskRunner
from legato.task_runners.remote import RemoteTaskRunner
from legato.task_runners.threads import TaskHandle, ThreadPoolTaskRunner, completed_handle

# Runners (and helpers) whose modules load only when first named: name -> module.
_LAZY: dict[str, str] = {
    "DaskTaskRunner": "legato.task_runners.dask",
    "get_dask_client": "legato.task_runners.dask",
    "RayTaskRunner": "legato.task_runners.ray",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "DaskTaskRunner",
    "ProcessPoolTaskRunner",
    "RayTaskRunner",
    "RemoteTaskRunner",
    "TaskHandle",
    "ThreadPoolTaskRunner",
    "completed_handle",
    "get_dask_client",
]
