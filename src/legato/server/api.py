"""The REST API: everything the CLI can do, as JSON over HTTP. This module:
flow runs, task runs, logs, the dashboard's numbers; `api_orchestration`:
deployments, workers, limits and the store.

Routes are thin: they parse the request, call `legato.client.Client`, and
answer with the same JSON views the CLI prints (`legato.client.views`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from legato.client import Client
from legato.client.views import (
    flow_run_to_dict,
    isoformat,
    log_to_dict,
    task_run_to_dict,
)
from legato.server.artifacts import artifact_to_dict, variable_to_dict
from legato.server.dashboard import dashboard_data
from legato.server.errors import error_responses
from legato.server.methods import HEAD_SCOPE_KEY
from legato.server.security import require_token
from legato.server.validation import MAX_LOG_ID, IsoTime, JsonObject
from legato.states import StateType


def client_of(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


router = APIRouter(
    prefix="/api",
    dependencies=[Depends(require_token)],
    tags=["runs"],
    responses=error_responses(401, 403, 422, 503),
)
ClientDep = Annotated[Client, Depends(client_of)]
# A run id or a unique prefix of one: 404 when nothing matches, 409 when several do.
_RUN_ERRORS = error_responses(404, 409)
_SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["log", "end"]},
        "data": {"type": "string"},
        "id": {"type": "string"},
    },
    "required": ["event", "data"],
}
LogId = Annotated[int, Query(ge=0, le=MAX_LOG_ID, description="The last log id already seen.")]


class RunInputBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: JsonObject | None = Field(
        default=None, description="Input for a run paused with wait_for_input."
    )


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
    tag: str | None = None,
    created_after: Annotated[
        IsoTime | None, Query(description="Only runs created at or after this time.")
    ] = None,
    created_before: Annotated[
        IsoTime | None,
        Query(
            description="Only runs created before this time (exclusive). To page, pass the "
            "'next_before' of the previous page: fast however deep the page."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    """Runs newest first, filtered. Page with ``created_before=<next_before>``
    (a cursor), or with ``offset`` (simple, slower on deep pages)."""
    runs = client.list_runs(
        limit=limit + offset + 1,
        states=state or None,
        flow_name=flow,
        deployment=deployment,
        tag=tag,
        created_after=created_after,
        created_before=created_before,
    )
    page = runs[offset : offset + limit]
    more = len(runs) > offset + limit
    return {
        "runs": [flow_run_to_dict(run) for run in page],
        "next_offset": offset + limit if more else None,
        "next_before": isoformat(page[-1].created) if more and page else None,
    }


@router.get("/runs/{run_id}", responses=_RUN_ERRORS)
def get_run(
    run_id: str,
    client: ClientDep,
    tasks: Annotated[
        bool, Query(description="Include every task run (false for a big run: page them instead).")
    ] = True,
) -> dict[str, Any]:
    """One run with its task runs (their dependency edges included), subflow runs,
    and a preview of its result."""
    run = client.resolve_run(run_id)
    data = flow_run_to_dict(run, tracebacks=True)
    data["result_preview"] = client.run_result_preview(run)
    task_runs = client.finished_task_runs(run)
    data["task_run_count"] = len(task_runs)
    if tasks:
        data["task_runs"] = [task_run_to_dict(t, tracebacks=True) for t in task_runs]
    data["subflow_runs"] = [flow_run_to_dict(child) for child in client.child_runs(run.id)]
    return data


@router.get("/runs/{run_id}/tasks", responses=_RUN_ERRORS)
def list_task_runs(
    run_id: str,
    client: ClientDep,
    state: Annotated[list[StateType] | None, Query()] = None,
    task: Annotated[str | None, Query(description="Only calls of this task.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """A run's task runs in the order they started (never started last), filtered
    and paged."""
    run = client.resolve_run(run_id)
    wanted = set(state or ())
    found = [
        t
        for t in client.finished_task_runs(run)
        if (not wanted or t.state in wanted) and (task is None or t.task_name == task)
    ]
    page = found[offset : offset + limit]
    return {
        "task_runs": [task_run_to_dict(t, tracebacks=True) for t in page],
        "total": len(found),
        "next_offset": offset + limit if offset + limit < len(found) else None,
    }


@router.get("/runs/{run_id}/tasks/{task_run_id}", responses=_RUN_ERRORS)
def get_task_run(run_id: str, task_run_id: str, client: ClientDep) -> dict[str, Any]:
    """One task run with its inputs, error and a preview of its result."""
    run = client.resolve_run(run_id)
    task_run = client.task_run(run.id, task_run_id)
    data = task_run_to_dict(task_run, tracebacks=True)
    data["result_preview"] = client.task_result_preview(task_run)
    return data


@router.get("/runs/{run_id}/artifacts", responses=_RUN_ERRORS)
def list_run_artifacts(
    run_id: str,
    client: ClientDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """The artifacts a run published (markdown, tables, links, progress) in the
    order it made them; ``data`` is each one's content as JSON."""
    run = client.resolve_run(run_id)
    return {"artifacts": [artifact_to_dict(a) for a in client.artifacts(run=run.id, limit=limit)]}


@router.get("/variables", tags=["variables"])
def list_variables(client: ClientDep) -> dict[str, Any]:
    """Every variable by name, with its value as JSON."""
    return {"variables": [variable_to_dict(v) for v in client.variables()]}


@router.get("/stats")
def stats(
    client: ClientDep,
    hours: Annotated[int, Query(ge=1, le=24 * 90)] = 24,
    buckets: Annotated[int, Query(ge=1, le=500)] = 24,
) -> dict[str, Any]:
    """What the dashboard shows: top-level runs over time by state, failure rate,
    slowest flows, late and crashed runs, workers alive."""
    return dashboard_data(client, hours=hours, buckets=buckets)


@router.get("/runs/{run_id}/logs", responses=_RUN_ERRORS)
def get_logs(
    run_id: str,
    client: ClientDep,
    after: LogId = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    run = client.resolve_run(run_id)
    logs = client.read_logs(run.id, after_id=after, limit=limit)
    return {"logs": [log_to_dict(log) for log in logs], "last_id": logs[-1].id if logs else after}


@router.get(
    "/runs/{run_id}/logs/stream",
    response_class=StreamingResponse,
    responses={
        **_RUN_ERRORS,
        200: {
            "description": "Server-sent events: 'log' (data: a log line as JSON, id: "
            "its log id) for each line, then 'end' (data: the run's final state).",
            "content": {"text/event-stream": {"schema": _SSE_EVENT}},
        },
    },
)
async def stream_logs(
    request: Request, run_id: str, client: ClientDep, after: LogId = 0
) -> StreamingResponse:
    """Server-sent events: each new log line as it is stored, until the run ends."""
    run = await run_in_threadpool(client.resolve_run, run_id)
    if request.scope.get(HEAD_SCOPE_KEY):  # HEAD: the headers, not an endless stream
        return StreamingResponse(iter(()), media_type="text/event-stream")

    async def events() -> AsyncIterator[str]:
        # Store calls go to the thread pool: a slow store (PostgreSQL riding out
        # an outage) must not stall the event loop that serves every request.
        last = after
        while True:
            logs = await run_in_threadpool(client.read_logs, run.id, after_id=last, limit=1000)
            for log in logs:
                last = log.id or last
                yield f"id: {last}\nevent: log\ndata: {json.dumps(log_to_dict(log))}\n\n"
            if not logs:
                current = await run_in_threadpool(client.get_run, run.id)
                if current.state.is_final:
                    yield f"event: end\ndata: {json.dumps({'state': current.state.value})}\n\n"
                    return
                await asyncio.sleep(0.5)

    return StreamingResponse(events(), media_type="text/event-stream")


@router.post("/runs/{run_id}/cancel", responses=_RUN_ERRORS)
def cancel_run(run_id: str, client: ClientDep) -> dict[str, Any]:
    return flow_run_to_dict(client.cancel_run(run_id))


@router.post("/runs/{run_id}/resume", responses=error_responses(400, 404, 409))
def resume_run(run_id: str, client: ClientDep, body: RunInputBody | None = None) -> dict[str, Any]:
    """Queue a failed, crashed, cancelled or paused run of a deployment again for
    workers (completed tasks replay). Input for a paused run is validated first:
    422 naming the field, and the run stays paused. A run started from a terminal
    (no work queue) is resumed where its code is: `legato resume RUN` (409 here)."""
    return flow_run_to_dict(client.requeue_run(run_id, body.input if body else None))


@router.post("/runs/{run_id}/retry", responses=_RUN_ERRORS)
def retry_run(run_id: str, client: ClientDep) -> dict[str, Any]:
    """Retry a failed, crashed or cancelled run of a deployment from where it failed:
    queued for workers again, its completed tasks replay instead of running twice."""
    return flow_run_to_dict(client.retry_run(run_id))
