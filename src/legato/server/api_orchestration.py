"""The REST API's orchestration half: deployments (deploy, trigger, backfill,
pause, resume, delete), workers, global limits, and the store's status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from legato.client import Client
from legato.client.views import (
    deployment_to_dict,
    flow_run_to_dict,
    store_status_to_dict,
    worker_to_dict,
)
from legato.errors import LegatoError
from legato.records import Schedule
from legato.server.api import client_of
from legato.server.security import require_token

router = APIRouter(prefix="/api", dependencies=[Depends(require_token)], tags=["orchestration"])
ClientDep = Annotated[Client, Depends(client_of)]


class ScheduleBody(BaseModel):
    """Exactly one of cron, interval (seconds) or rrule."""

    cron: str | None = None
    interval: float | None = Field(default=None, gt=0)
    rrule: str | None = None
    timezone: str = "UTC"
    anchor: datetime | None = None


class DeploymentBody(BaseModel):
    """A deployment, as ``legato deploy`` takes it."""

    entrypoint: str = Field(description="path/to/file.py:flow_fn or package.module:flow_fn")
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedules: list[ScheduleBody] = Field(default_factory=list)
    work_queue: str = "default"
    priority: int = 0
    tags: list[str] = Field(default_factory=list)
    concurrency_limit: int | None = Field(default=None, ge=1)
    collision_strategy: Literal["enqueue", "cancel_new"] = "enqueue"
    description: str | None = None
    catchup: bool = False


class TriggerBody(BaseModel):
    parameters: dict[str, Any] = Field(default_factory=dict)
    at: datetime | None = Field(default=None, description="When the run is due (default now).")


class BackfillBody(BaseModel):
    start: datetime
    end: datetime | None = Field(default=None, description="Default: now.")
    concurrency: int | None = Field(default=None, ge=1)


class LimitBody(BaseModel):
    slots: int = Field(ge=0)
    per_seconds: float | None = Field(default=None, gt=0)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@router.get("/deployments")
def list_deployments(client: ClientDep) -> list[dict[str, Any]]:
    return [deployment_to_dict(d, client.next_scheduled_times(d, 3)) for d in client.deployments()]


@router.get("/deployments/{name}")
def get_deployment(name: str, client: ClientDep) -> dict[str, Any]:
    """A deployment, its next runs, its latest runs and its flow's parameter schema."""
    deployment = client.get_deployment(name)
    data = deployment_to_dict(deployment, client.next_scheduled_times(deployment, 5))
    try:
        data["parameter_schema"] = client.parameter_schema(name)
        data["parameter_schema_error"] = None
    except LegatoError as exc:  # the flow's code is not importable on this host
        data["parameter_schema"] = None
        data["parameter_schema_error"] = str(exc)
    data["runs"] = [flow_run_to_dict(run) for run in client.list_runs(deployment=name, limit=10)]
    return data


@router.put("/deployments/{name}")
def deploy(name: str, body: DeploymentBody, client: ClientDep) -> dict[str, Any]:
    """Create or update a deployment. Its flow is loaded here and its parameters
    and schedules checked first (422, nothing stored, when they do not fit)."""
    schedules = [
        Schedule(
            cron=s.cron,
            interval=s.interval,
            rrule=s.rrule,
            timezone=s.timezone,
            anchor=None if s.anchor is None else _utc(s.anchor),
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
    )
    return deployment_to_dict(deployment, client.next_scheduled_times(deployment, 5))


@router.delete("/deployments/{name}")
def delete_deployment(name: str, client: ClientDep) -> dict[str, Any]:
    """Remove a deployment; its runs stay."""
    client.delete_deployment(name)
    return {"deleted": name}


@router.post("/deployments/{name}/backfill")
def backfill(name: str, body: BackfillBody, client: ClientDep) -> dict[str, Any]:
    """Queue a run for every slot of the deployment's schedules in [start, end];
    a slot that already has a run keeps it."""
    end = _utc(body.end) if body.end is not None else datetime.now(UTC)
    found = client.backfill(name, _utc(body.start), end, concurrency=body.concurrency)
    return {
        "runs": [{**flow_run_to_dict(run), "created_now": new} for run, new in found],
        "created": sum(1 for _, new in found if new),
    }


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


@router.delete("/limits/{name}")
def delete_limit(name: str, client: ClientDep) -> dict[str, Any]:
    client.delete_limit(name)
    return {"deleted": name}


@router.get("/store")
def store_status(client: ClientDep) -> dict[str, Any]:
    """Backend, location (password masked), schema version, size and row counts."""
    return store_status_to_dict(client.store_status())
