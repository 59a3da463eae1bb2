"""The REST API's automations: list, read (with buckets and firings), apply, enable or
disable, delete. Specs are the YAML file's entries as JSON (see `legato automation`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel

from legato.automations import service
from legato.client import Client
from legato.server.api import client_of
from legato.server.errors import error_responses
from legato.server.security import require_token

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(require_token)],
    tags=["automations"],
    responses=error_responses(401, 403, 422, 503),
)
ClientDep = Annotated[Client, Depends(client_of)]


class EnabledBody(BaseModel):
    enabled: bool


@router.get("/automations")
def list_automations(client: ClientDep) -> dict[str, Any]:
    """Every automation by name, with its last firing."""
    store = client.store
    return {"automations": [service.summary(store, a) for a in store.list_automations()]}


@router.get("/automations/{name}", responses=error_responses(404))
def get_automation(
    client: ClientDep,
    name: str,
    event: Annotated[str | None, Query(description="Say whether this event matched.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """The automation with its open buckets, recent firings (their events and each
    action's state or error), and with ``event``, whether that event matched and why not."""
    return service.explain(client.store, name, event_id=event, limit=limit)


@router.post("/automations", responses=error_responses(400))
def apply_automations(
    client: ClientDep,
    body: Annotated[
        list[Any] | dict[str, Any],
        Body(description="A list of automations, or {automations: [...]}."),
    ],
) -> dict[str, Any]:
    """Create or update (by name) every automation given; none is saved when any is invalid."""
    applied = service.apply(client.store, service.parse_many(body))
    return {"applied": [{"name": s.name, "created": created} for s, created in applied]}


@router.patch("/automations/{name}", responses=error_responses(400, 404))
def set_enabled(client: ClientDep, name: str, body: EnabledBody) -> dict[str, Any]:
    """Enable or disable (pause) the automation."""
    service.set_enabled(client.store, name, body.enabled)
    stored, _ = service.get(client.store, name)
    return service.summary(client.store, stored)


@router.delete("/automations/{name}", responses=error_responses(404))
def delete_automation(client: ClientDep, name: str) -> dict[str, Any]:
    """Delete the automation with its state and firing history."""
    service.delete(client.store, name)
    return {"deleted": name}
