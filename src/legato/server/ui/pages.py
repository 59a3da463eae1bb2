"""The UI's pages: each a GET with every choice in its URL, so any view can be shared."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from legato.client import Client
from legato.records import utcnow
from legato.server.artifacts import artifact_view, variable_row
from legato.server.dashboard import dashboard_data
from legato.server.security import has_session
from legato.server.ui.charts import runs_chart
from legato.server.ui.forms import form_fields
from legato.server.ui.graph import FOLD_AT, NODE_HEIGHT, NODE_WIDTH, build_graph
from legato.server.ui.render import client_of, render
from legato.server.ui.timeline import build_timeline
from legato.states import StateType

ARTIFACTS_SHOWN = 200
GROUP_PAGE = 100
LOG_LINES = 1000
RUNS_PAGE = 50


class LoginRequired(Exception):
    """Raised by `require_session`; answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def require_session(request: Request) -> None:
    if not has_session(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)


router = APIRouter(dependencies=[Depends(require_session)], include_in_schema=False)
ClientDep = Annotated[Client, Depends(client_of)]
ALL_STATES = [s.value for s in StateType]


@router.get("/", response_class=HTMLResponse, name="ui_dashboard")
def dashboard(
    request: Request, client: ClientDep, hours: Annotated[int, Query(ge=1, le=2160)] = 24
) -> Response:
    stats = dashboard_data(client, hours=hours, buckets=24 if hours <= 24 else 30)
    return render(
        request,
        "dashboard.html",
        {"stats": stats, "hours": hours, "chart": runs_chart(stats)},
        section="ui_dashboard",
    )


def _parse_time(text: str | None, field: str, problems: list[str]) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"'{field}': not a date and time ({text!r}); use 2026-11-30T08:00")
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@router.get("/runs", response_class=HTMLResponse, name="ui_runs")
def runs(
    request: Request,
    client: ClientDep,
    state: str = "",
    flow: str = "",
    deployment: str = "",
    tag: str = "",
    since: str = "",
    until: str = "",
    before: str = "",
) -> Response:
    problems: list[str] = []
    states = None
    if state:
        try:
            states = [StateType(state)]
        except ValueError:
            problems.append(f"'state': unknown state {state!r}; pick one of the list")
    created_after = _parse_time(since, "created from", problems)
    created_until = _parse_time(until, "until", problems)
    cursor = _parse_time(before, "before", problems)
    upper = min((t for t in (created_until, cursor) if t is not None), default=None)
    found = client.list_runs(
        limit=RUNS_PAGE + 1,
        states=states,
        flow_name=flow or None,
        deployment=deployment or None,
        tag=tag or None,
        created_after=created_after,
        created_before=upper,
    )
    page = found[:RUNS_PAGE]
    from legato.server.ui.ai_pages import run_costs  # it imports this module

    filters = {
        "state": state,
        "flow": flow,
        "deployment": deployment,
        "tag": tag,
        "since": since,
        "until": until,
    }
    kept = {k: v for k, v in filters.items() if v}
    next_url = None
    if len(found) > RUNS_PAGE:
        next_url = "?" + urlencode({**kept, "before": page[-1].created.isoformat()})
    return render(
        request,
        "runs.html",
        {
            "runs": page,
            "filters": filters,
            "all_states": ALL_STATES,
            "problems": problems,
            "next_url": next_url,
            "first_page_url": ("?" + urlencode(kept)) if before else None,
            "live": not before and any(not r.state.is_final for r in page),
            "costs": run_costs(client, page),
        },
        status_code=422 if problems else 200,
        section="ui_runs",
    )


def run_page_context(
    client: Client,
    run_id: str,
    *,
    task: str | None = None,
    group: str | None = None,
    gstate: str = "",
    gpage: int = 0,
) -> dict[str, Any]:
    """Everything the run page shows; shared by the page and the actions that
    answer with it (an approval form sent back with its errors)."""
    run = client.resolve_run(run_id)
    task_runs = client.finished_task_runs(run)
    graph = build_graph(task_runs)
    selected = None
    task_result = None
    if task:
        selected = next((t for t in task_runs if t.id == task), None)
        if selected is not None:
            task_result = client.task_result_preview(selected)
    members = graph.groups.get(group or "", [])
    if gstate:
        members = [t for t in members if t.state.value == gstate]
    start = max(gpage, 0) * GROUP_PAGE
    logs = client.read_logs(run.id, limit=LOG_LINES + 1)
    artifacts = client.artifacts(run=run.id, limit=ARTIFACTS_SHOWN + 1)
    pause = run.pause
    from legato.server.ui.ai_pages import forked_from, llm_panel  # it imports this module

    input_fields = (
        form_fields(pause.input_schema)
        if pause is not None and pause.input_schema and run.state is StateType.PAUSED
        else []
    )
    return {
        "run": run,
        "counts": sorted(Counter(t.state.value for t in task_runs).items()),
        "result_preview": client.run_result_preview(run),
        "graph": graph,
        "timeline": build_timeline(graph, task_runs, utcnow()),
        "node_width": NODE_WIDTH,
        "node_height": NODE_HEIGHT,
        "fold_at": FOLD_AT,
        "selected_task": selected,
        "task_result": task_result,
        "task_keys": {t.id: t.call_key for t in task_runs} if selected else {},
        "open_group": group if group in graph.groups else None,
        "group_state": gstate,
        "group_members": members[start : start + GROUP_PAGE],
        "group_members_total": len(members),
        "group_prev": gpage - 1 if gpage > 0 else None,
        "group_next": gpage + 1 if start + GROUP_PAGE < len(members) else None,
        "all_states": ALL_STATES,
        "children": client.child_runs(run.id),
        "logs": logs[:LOG_LINES],
        "more_logs": len(logs) > LOG_LINES,
        "last_log_id": logs[LOG_LINES - 1].id
        if len(logs) > LOG_LINES
        else (logs[-1].id if logs else 0),
        "input_fields": input_fields,
        "artifacts": [artifact_view(a) for a in artifacts[:ARTIFACTS_SHOWN]],
        "more_artifacts": len(artifacts) > ARTIFACTS_SHOWN,
        "llm": llm_panel(client, run),
        "forked_from": forked_from(run),
    }


@router.get("/runs/{run_id}", response_class=HTMLResponse, name="ui_run")
def run_page(
    request: Request,
    run_id: str,
    client: ClientDep,
    task: str | None = None,
    group: str | None = None,
    gstate: str = "",
    gpage: Annotated[int, Query(ge=0)] = 0,
    notice: str | None = None,
) -> Response:
    context = run_page_context(client, run_id, task=task, group=group, gstate=gstate, gpage=gpage)
    if context["run"].id != run_id:  # a prefix: send the browser to the full URL
        return RedirectResponse(request.url_for("ui_run", run_id=context["run"].id), 303)
    return render(request, "run.html", {**context, "notice": notice}, section="ui_runs")


@router.get("/approvals", response_class=HTMLResponse, name="ui_approvals")
def approvals(request: Request, client: ClientDep) -> Response:
    paused = client.list_runs(states=[StateType.PAUSED], limit=200)
    items = [
        {
            "run": run,
            "fields": form_fields(run.pause.input_schema) if run.pause is not None else [],
        }
        for run in paused
    ]
    return render(request, "approvals.html", {"items": items}, section="ui_approvals")


@router.get("/deployments", response_class=HTMLResponse, name="ui_deployments")
def deployments(request: Request, client: ClientDep) -> Response:
    listed = [(d, client.next_scheduled_times(d, 3)) for d in client.deployments()]
    return render(request, "deployments.html", {"deployments": listed}, section="ui_deployments")


def deployment_context(
    client: Client, name: str, submitted: dict[str, str] | None = None
) -> dict[str, Any]:
    deployment = client.get_deployment(name)
    # The schema recorded when it was deployed: the server never imports the flow.
    schema = client.parameter_schema(name)
    fields: list[Any] = [] if schema is None else form_fields(schema, submitted=submitted)
    schema_note = (
        "No parameter schema was recorded (deployed through the API without one): "
        "the run uses the deployment's parameters, and the worker checks them."
        if schema is None
        else None
    )
    latest = client.list_runs(deployment=name, limit=20)
    return {
        "deployment": deployment,
        "next_runs": client.next_scheduled_times(deployment, 5),
        "fields": fields,
        "schema_note": schema_note,
        "runs": latest,
        "live": any(not r.state.is_final for r in latest),
        "problems": None,
        "queued": None,
    }


@router.get("/deployments/{name}", response_class=HTMLResponse, name="ui_deployment")
def deployment_page(
    request: Request, name: str, client: ClientDep, queued: str | None = None
) -> Response:
    context = deployment_context(client, name)
    context["queued"] = queued
    return render(request, "deployment.html", context, section="ui_deployments")


@router.get("/workers", response_class=HTMLResponse, name="ui_workers")
def workers(request: Request, client: ClientDep) -> Response:
    alive = {w.id for w in client.workers()}
    return render(
        request,
        "workers.html",
        {"workers": client.workers(include_gone=True), "alive": alive, "limits": client.limits()},
        section="ui_workers",
    )


@router.get("/variables", response_class=HTMLResponse, name="ui_variables")
def variables(request: Request, client: ClientDep) -> Response:
    rows = [variable_row(v) for v in client.variables()]
    return render(request, "variables.html", {"variables": rows}, section="ui_variables")
