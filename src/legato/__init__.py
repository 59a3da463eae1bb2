"""legato: a Python-native workflow orchestrator with durable execution.

Decorate functions with `@flow` and `@task`; every run is recorded, retried,
cached and resumable. See the README for a tour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legato.engine.calls import resume_flow_run
from legato.engine.context import RunContext, get_run_context
from legato.engine.logs import get_run_logger
from legato.engine.pause import pause_flow_run
from legato.engine.sleep import sleep
from legato.engine.transactions import transaction
from legato.errors import (
    CancelledRun,
    FlowCancelled,
    FlowPaused,
    LegatoError,
    ParameterValidationError,
    TaskTimeoutError,
)
from legato.flow_runs import suspend_flow_run
from legato.flows import Flow, flow
from legato.futures import (
    LegatoFuture,
    LegatoFutureList,
    PrefectFuture,
    as_completed,
    unmapped,
    wait,
)
from legato.states import State, StateType
from legato.tags import tags
from legato.task_runners import ThreadPoolTaskRunner
from legato.tasks import Task, exponential_backoff, task, task_input_hash

if TYPE_CHECKING:
    from legato.automations.deployment_triggers import DeploymentEventTrigger
    from legato.deadlines import Deadline
    from legato.events import emit_event
    from legato.input import RunInput
    from legato.observed import observe, observe_task

__version__ = "0.1.0"

__all__ = [
    "CancelledRun",
    "Deadline",
    "DeploymentEventTrigger",
    "Flow",
    "FlowCancelled",
    "FlowPaused",
    "LegatoError",
    "LegatoFuture",
    "LegatoFutureList",
    "ParameterValidationError",
    "PrefectFuture",
    "RunContext",
    "RunInput",
    "State",
    "StateType",
    "Task",
    "TaskTimeoutError",
    "ThreadPoolTaskRunner",
    "as_completed",
    "emit_event",
    "exponential_backoff",
    "flow",
    "get_run_context",
    "get_run_logger",
    "observe",
    "observe_task",
    "pause_flow_run",
    "resume_flow_run",
    "sleep",
    "suspend_flow_run",
    "tags",
    "task",
    "task_input_hash",
    "transaction",
    "unmapped",
    "wait",
]


def __getattr__(name: str) -> Any:
    # RunInput needs pydantic, which costs ~100 ms to import: load it on first use.
    if name == "RunInput":
        from legato.input import RunInput

        return RunInput
    if name == "DeploymentEventTrigger":  # pydantic, like RunInput: on first use
        from legato.automations.deployment_triggers import DeploymentEventTrigger

        return DeploymentEventTrigger
    if name == "Deadline":  # loaded on first use
        from legato.deadlines import Deadline

        return Deadline
    if name in ("observe", "observe_task"):  # observe-only wrapping: on first use
        from legato import observed as _observed

        return getattr(_observed, name)
    if name == "ai":  # legato.ai (model calls, agents): on first use
        import importlib

        return importlib.import_module("legato.ai")
    if name == "emit_event":  # events load on first use
        from legato.events import emit_event

        return emit_event
    raise AttributeError(f"module 'legato' has no attribute {name!r}")
