"""The REST API: everything the CLI can do, as JSON over HTTP.

Routes are thin: they parse the request, call `legato.client.Client`, and
answer with the same JSON views the CLI prints (`legato.client.views`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from legato.client import Client
from legato.client.views import (
    deployment_to_dict,
    flow_run_to_dict,
    log_to_dict,
    task_run_to_dict,
    worker_to_dict,
)
from legato.states import StateType


def client_of(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """With a token configured, every call needs ``Authorization: Bearer <token>``."""
    token: str | None = request.app.state.token
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong API token: send 'Authorization: Bearer <LEGATO_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])
ClientDep = Annotated[Client, Depends(client_of)]


class RunInputBody(BaseModel):
    input: dict[str, Any] | None = Field(
        default=None, description="Input for a run paused with wait_for_input."
    )


class TriggerBody(BaseModel):
    parameters: dict[str, Any] = Field(default_factory=dict)
    at: datetime | None = Field(default=None, description="When the run is due (default now).")


class LimitBody(BaseModel):
    slots: int = Field(ge=0)
    per_seconds: float | None = Field(default=None, gt=0)


@router.get("/health")
def health(client: ClientDep) -> dict[str, Any]:
    status = client.store_status()
    return {"ok": True, "backend": status.backend, "schema_version": status.schema_version}


@router.get("/runs")
def list_runs(
    client: ClientDep,
    state: Annotated[list[StateType] | None, Query()] = None,
    flow: str | None = None,
    deployment: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Runs newest first, filtered; ``offset`` pages through them."""
    runs = client.list_runs(
        limit=limit + offset + 1, states=state or None, flow_name=flow, deployment=deployment
    )
    page = runs[offset : offset + limit]
    more = len(runs) > offset + limit
    return {
        "runs": [flow_run_to_dict(run) for run in page],
        "next_offset": offset + limit if more else None,
    }


@router.get("/runs/{run_id}")
def get_run(run_id: str, client: ClientDep) -> dict[str, Any]:
    """One run with its task runs (their dependency edges included) and subflow runs."""
    run = client.resolve_run(run_id)
    data = flow_run_to_dict(run, tracebacks=True)
    data["task_runs"] = [task_run_to_dict(t, tracebacks=True) for t in client.task_runs(run.id)]
    data["subflow_runs"] = [flow_run_to_dict(child) for child in client.child_runs(run.id)]
    return data


@router.get("/runs/{run_id}/logs")
def get_logs(
    run_id: str,
    client: ClientDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    run = client.resolve_run(run_id)
    logs = client.read_logs(run.id, after_id=after, limit=limit)
    return {"logs": [log_to_dict(log) for log in logs], "last_id": logs[-1].id if logs else after}


@router.get("/runs/{run_id}/logs/stream")
async def stream_logs(run_id: str, client: ClientDep, after: int = 0) -> StreamingResponse:
    """Server-sent events: each new log line as it is stored, until the run ends."""
    run = client.resolve_run(run_id)

    async def events() -> AsyncIterator[str]:
        last = after
        while True:
            logs = client.read_logs(run.id, after_id=last, limit=1000)
            for log in logs:
                last = log.id or last
                yield f"id: {last}\nevent: log\ndata: {json.dumps(log_to_dict(log))}\n\n"
            if not logs:
                current = client.get_run(run.id)
                if current.state.is_final:
                    yield f"event: end\ndata: {json.dumps({'state': current.state.value})}\n\n"
                    return
                await asyncio.sleep(0.5)

    return StreamingResponse(events(), media_type="text/event-stream")


@router.post("/runs/{run_id}/cancel")
def cancel_run(run_id: str, client: ClientDep) -> dict[str, Any]:
    return flow_run_to_dict(client.cancel_run(run_id))


@router.post("/runs/{run_id}/resume")
def resume_run(run_id: str, client: ClientDep, body: RunInputBody | None = None) -> dict[str, Any]:
    """Queue a failed, crashed, cancelled or paused run of a deployment again for
    workers (completed tasks replay). Input for a paused run is validated first:
    422 naming the field, and the run stays paused. A run started from a terminal
    (no work queue) is resumed where its code is: `legato resume RUN` (409 here)."""
    return flow_run_to_dict(client.requeue_run(run_id, body.input if body else None))


@router.get("/deployments")
def list_deployments(client: ClientDep) -> list[dict[str, Any]]:
    return [deployment_to_dict(d, client.next_scheduled_times(d, 3)) for d in client.deployments()]


@router.get("/deployments/{name}")
def get_deployment(name: str, client: ClientDep) -> dict[str, Any]:
    deployment = client.get_deployment(name)
    data = deployment_to_dict(deployment, client.next_scheduled_times(deployment, 5))
    data["runs"] = [flow_run_to_dict(run) for run in client.list_runs(deployment=name, limit=10)]
    return data


@router.post("/deployments/{name}/trigger")
def trigger(name: str, client: ClientDep, body: TriggerBody | None = None) -> dict[str, Any]:
    """Queue a run; parameters are checked against the flow's signature first (422)."""
    body = body or TriggerBody()
    return flow_run_to_dict(client.trigger(name, body.parameters, at=body.at))


@router.post("/deployments/{name}/pause")
def pause_deployment(name: str, client: ClientDep) -> dict[str, Any]:
    return deployment_to_dict(client.pause_deployment(name))


@router.post("/deployments/{name}/resume")
def resume_deployment(name: str, client: ClientDep) -> dict[str, Any]:
    return deployment_to_dict(client.resume_deployment(name))


@router.get("/workers")
def list_workers(client: ClientDep, all: bool = False) -> list[dict[str, Any]]:
    return [worker_to_dict(w) for w in client.workers(include_gone=all)]


@router.get("/limits")
def list_limits(client: ClientDep) -> list[dict[str, Any]]:
    return [
        {"name": x.name, "slots": x.slots, "per_seconds": x.per_seconds, "active": x.active}
        for x in client.limits()
    ]


@router.put("/limits/{name}")
def set_limit(name: str, body: LimitBody, client: ClientDep) -> dict[str, Any]:
    limit = client.set_limit(name, body.slots, per_seconds=body.per_seconds)
    return {"name": limit.name, "slots": limit.slots, "per_seconds": limit.per_seconds}
