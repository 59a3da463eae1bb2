"""Task runners: where submitted task calls execute.

`ThreadPoolTaskRunner` (the default) runs them on threads of the flow's
process. `ProcessPoolTaskRunner`, `DaskTaskRunner` and `RayTaskRunner` run
only the function bodies elsewhere; the flow's process records everything
(`legato.task_runners.remote`, `legato.engine.remote`). The Dask and Ray
runners load their libraries (extras ``legato[dask]``, ``legato[ray]``) only
when first named.
"""

from __future__ import annotations

from legato.task_runners.processes import ProcessPoolTaskRunner
from legato.task_runners.remote import RemoteTaskRunner
from legato.task_runners.threads import TaskHandle, ThreadPoolTaskRunner, completed_handle

__all__ = [
    "ProcessPoolTaskRunner",
    "RemoteTaskRunner",
    "TaskHandle",
    "ThreadPoolTaskRunner",
    "completed_handle",
]
