"""The REST API's orchestration half: deployments (deploy, trigger, backfill,
pause, resume, delete), workers, global limits, and the store's status.

The server never imports or runs a flow's code: a deployment is stored from the
request as given, and a triggered run's parameters are checked against the
parameter schema recorded when the flow was deployed from its code (`legato
deploy`, `Flow.deploy`) or given in the request; a deployment with no schema has
its runs' parameters checked by the worker that runs them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from legato.client import Client
from legato.client.views import (
    deployment_to_dict,
    flow_run_to_dict,
    store_status_to_dict,
    worker_to_dict,
)
from legato.records import Schedule
from legato.server.api import client_of
from legato.server.errors import error_responses
from legato.server.security import require_token
from legato.server.validation import (
    Concurrency,
    IsoTime,
    JsonObject,
    Name,
    Priority,
    RateWindow,
    Seconds,
    Slots,
    Text,
)

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(require_token)],
    tags=["orchestration"],
    responses=error_responses(401, 403, 422, 503),
)
ClientDep = Annotated[Client, Depends(client_of)]
_NOT_FOUND = error_responses(404)
_BODY = error_responses(400)  # a body that is not even JSON
_BODY_NOT_FOUND = error_responses(400, 404)
# A limit's name as it is stored: no control characters.
LimitName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ScheduleBody(BaseModel):
    """Exactly one of cron, interval (seconds) or rrule."""

    model_config = ConfigDict(extra="forbid")

    cron: Annotated[str, Field(strict=True, max_length=200)] | None = None
    interval: Seconds | None = Field(
        default=None, description="Seconds between runs: 1 to 10 years."
    )
    rrule: Annotated[str, Field(strict=True, max_length=2000)] | None = None
    timezone: Annotated[str, Field(strict=True, max_length=64)] = "UTC"
    anchor: IsoTime | None = None


class DeploymentBody(BaseModel):
    """A deployment, as ``legato deploy`` takes it. Its code is not loaded here."""

    model_config = ConfigDict(extra="forbid")

    entrypoint: Annotated[str, Field(strict=True, min_length=3, max_length=4096)] = Field(
        description="path/to/file.py:flow_fn or package.module:flow_fn, as the workers load it"
    )
    parameters: JsonObject = Field(default_factory=dict)
    schedules: list[ScheduleBody] = Field(default_factory=list, max_length=100)
    work_queue: Name = "default"
    priority: Priority = 0
    tags: list[Name] = Field(default_factory=list, max_length=100)
    concurrency_limit: Concurrency | None = None
    collision_strategy: Literal["enqueue", "cancel_new"] = "enqueue"
    description: Text | None = None
    catchup: Annotated[bool, Field(strict=True)] = False
    parameter_schema: JsonObject | None = Field(
        default=None,
        description="The flow's parameters as a JSON Schema (what `legato deploy` records): "
        "parameters are checked against it now and at every trigger. Without it, the "
        "worker that runs a run checks them and fails the run when they do not fit.",
    )
    flow_name: Name | None = Field(
        default=None, description="Default: the entrypoint's function name."
    )


class TriggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: JsonObject = Field(default_factory=dict)
    at: IsoTime | None = Field(default=None, description="When the run is due (default now).")


class BackfillBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: IsoTime
    end: IsoTime | None = Field(default=None, description="Default: now.")
    concurrency: Concurrency | None = None


class LimitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slots: Slots
    per_seconds: RateWindow | None = None


@router.get("/deployments")
def list_deployments(client: ClientDep) -> list[dict[str, Any]]:
    return [deployment_to_dict(d, client.next_scheduled_times(d, 3)) for d in client.deployments()]


@router.get("/deployments/{name}", responses=_NOT_FOUND)
def get_deployment(name: str, client: ClientDep) -> dict[str, Any]:
    """A deployment, its next runs, its latest runs and its flow's parameter schema
    (as recorded when it was deployed; never read from its code)."""
    deployment = client.get_deployment(name)
    data = deployment_to_dict(deployment, client.next_scheduled_times(deployment, 5))
    data["parameter_schema"] = client.parameter_schema(name)
    data["parameter_schema_error"] = (
        None
        if data["parameter_schema"] is not None
        else "no parameter schema was recorded (deployed through the API without one): "
        "a worker checks each run's parameters when it starts it"
    )
    data["runs"] = [flow_run_to_dict(run) for run in client.list_runs(deployment=name, limit=10)]
    return data


@router.put("/deployments/{name}", responses=_BODY)
def deploy(name: str, body: DeploymentBody, client: ClientDep) -> dict[str, Any]:
    """Create or update a deployment. The flow's code is not loaded: its name,
    schedules and parameters (against ``parameter_schema`` when given) are checked
    first (422, nothing stored, when they do not fit)."""
    schedules = [
        Schedule(
            cron=s.cron,
            interval=s.interval,
            rrule=s.rrule,
            timezone=s.timezone,
            anchor=s.anchor,
        )
        for s in body.schedules
    ]
    deployment = client.deploy(
        body.entrypoint,
        name=name,
        schedules=schedules,
        parameters=body.parameters,
        work_queue=body.work_queue,
        priority=body.priority,
        tags=body.tags,
        concurrency_limit=body.concurrency_limit,
        collision_strategy=body.collision_strategy,
        description=body.description,
        catchup=body.catchup,
        load_code=False,
        parameter_schema=body.parameter_schema,
        flow_name=body.flow_name,
    )
    return deployment_to_dict(deployment, client.next_scheduled_times(deployment, 5))


@router.delete("/deployments/{name}", responses=_NOT_FOUND)
def delete_deployment(name: str, client: ClientDep) -> dict[str, Any]:
    """Remove a deployment; its runs stay."""
    client.delete_deployment(name)
    return {"deleted": name}


@router.post("/deployments/{name}/backfill", responses=_BODY_NOT_FOUND)
def backfill(name: str, body: BackfillBody, client: ClientDep) -> dict[str, Any]:
    """Queue a run for every slot of the deployment's schedules in [start, end];
    a slot that already has a run keeps it."""
    end = body.end if body.end is not None else datetime.now(UTC)
    found = client.backfill(name, body.start, end, concurrency=body.concurrency)
    return {
        "runs": [{**flow_run_to_dict(run), "created_now": new} for run, new in found],
        "created": sum(1 for _, new in found if new),
    }


@router.post("/deployments/{name}/trigger", responses=_BODY_NOT_FOUND)
def trigger(name: str, client: ClientDep, body: TriggerBody | None = None) -> dict[str, Any]:
    """Queue a run; its parameters are checked against the deployment's recorded
    parameter schema first (422). Without a schema, the worker checks them."""
    body = body or TriggerBody()
    return flow_run_to_dict(client.trigger(name, body.parameters, at=body.at))


@router.post("/deployments/{name}/pause", responses=_NOT_FOUND)
def pause_deployment(name: str, client: ClientDep) -> dict[str, Any]:
    return deployment_to_dict(client.pause_deployment(name))


@router.post("/deployments/{name}/resume", responses=_NOT_FOUND)
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


@router.put("/limits/{name}", responses=_BODY)
def set_limit(name: LimitName, body: LimitBody, client: ClientDep) -> dict[str, Any]:
    limit = client.set_limit(name, body.slots, per_seconds=body.per_seconds)
    return {"name": limit.name, "slots": limit.slots, "per_seconds": limit.per_seconds}


@router.delete("/limits/{name}", responses=_NOT_FOUND)
def delete_limit(name: str, client: ClientDep) -> dict[str, Any]:
    client.delete_limit(name)
    return {"deleted": name}


@router.get("/store")
def store_status(client: ClientDep) -> dict[str, Any]:
    """Backend, location (password masked), schema version, size and row counts."""
    return store_status_to_dict(client.store_status())
