"""Attributes of the current flow run: ``id``, ``name``, ``flow_name``, ``flow_version``,
``parameters``, ``tags``, ``run_count``, ``parent_flow_run_id``, ``scheduled_start_time``
and ``deployment_name``. Each is read when accessed; outside a flow run it is empty."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from legato.engine.context import FLOW_CONTEXT, NAMING_RUN
from legato.records import FlowRun, utcnow


def _run() -> FlowRun | None:
    naming = NAMING_RUN.get()  # inside a callable flow_run_name
    if naming is not None:
        return naming
    ctx = FLOW_CONTEXT.get()
    return ctx.run if ctx is not None else None


def get_id() -> str | None:
    run = _run()
    return run.id if run is not None else None


def get_name() -> str | None:
    run = _run()
    return run.name if run is not None else None


def get_flow_name() -> str | None:
    run = _run()
    return run.flow_name if run is not None else None


def get_flow_version() -> str | None:
    run = _run()
    return run.flow_version if run is not None else None


def get_parameters() -> dict[str, Any]:
    run = _run()
    return dict(run.parameters) if run is not None else {}


def get_tags() -> list[str]:
    run = _run()
    return list(run.tags) if run is not None else []


def get_run_count() -> int:
    run = _run()
    return run.attempts if run is not None else 0


def get_parent_flow_run_id() -> str | None:
    run = _run()
    return run.parent_run_id if run is not None else None


def get_deployment_name() -> str | None:
    run = _run()
    return run.deployment if run is not None else None


def get_scheduled_start_time() -> datetime:
    """When the run was due; its creation time if it had no schedule, now outside a run."""
    run = _run()
    if run is None:
        return utcnow()
    return run.scheduled_time or run.created


_GETTERS: dict[str, Callable[[], Any]] = {
    "id": get_id,
    "name": get_name,
    "flow_name": get_flow_name,
    "flow_version": get_flow_version,
    "parameters": get_parameters,
    "tags": get_tags,
    "run_count": get_run_count,
    "parent_flow_run_id": get_parent_flow_run_id,
    "deployment_name": get_deployment_name,
    "scheduled_start_time": get_scheduled_start_time,
}


def __getattr__(name: str) -> Any:
    getter = _GETTERS.get(name)
    if getter is None:
        raise AttributeError(
            f"legato.runtime.flow_run has no attribute {name!r}; available: "
            f"{', '.join(sorted(_GETTERS))}"
        )
    return getter()


def __dir__() -> list[str]:
    return sorted([*globals(), *_GETTERS])
