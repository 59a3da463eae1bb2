"""Events: things that happened, stored durably, that automations react to.

    from legato.events import emit_event

    emit_event(
        "warehouse.table.refreshed",
        resource={"legato.resource.id": "warehouse.table.orders"},
        payload={"rows": 1200},
    )

The same call as Prefect 3's ``prefect.events.emit_event`` (``prefect.resource.*``
labels are accepted as aliases of ``legato.resource.*``). Flow runs and failed task
runs write their own events (``legato.flow-run.Completed`` …) in the same store
transaction as the state change. Inside a run, an emitted event names the run, its
flow and task run among its related resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from legato._event_records import Event, EventBatch
from legato.engine import events as _events
from legato.engine.file_arrival import FileTrigger, watch_folder

if TYPE_CHECKING:
    from legato.automations.deployment_triggers import DeploymentEventTrigger

__all__ = [
    "DeploymentEventTrigger",
    "Event",
    "EventBatch",
    "FileTrigger",
    "emit_event",
    "watch_folder",
]


def __getattr__(name: str) -> Any:
    # Prefect's `from prefect.events import DeploymentEventTrigger` (pydantic: on first use).
    if name == "DeploymentEventTrigger":
        from legato.automations.deployment_triggers import DeploymentEventTrigger

        return DeploymentEventTrigger
    raise AttributeError(f"module 'legato.events' has no attribute {name!r}")


def emit_event(
    event: str,
    resource: Mapping[str, str],
    related: Iterable[Mapping[str, str]] | None = (),
    payload: Mapping[str, Any] | None = None,
    id: str | None = None,
    occurred: datetime | None = None,
    follows: str | None = None,
) -> str:
    """Store one event and return its id. An id stored before keeps its first event
    (emitting twice with one ``id`` stores it once)."""
    checked = _events.build_event(
        event,
        resource,
        related,
        payload,
        id=id,
        occurred=occurred,
        follows=follows,
        context_related=_events.run_related(),
    )
    _events.store_for_events().emit_events([checked])
    return checked.id
