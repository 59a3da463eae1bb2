"""The UI's forms that change something: each checks the CSRF token, calls the
client, and redirects to the page that shows the result (or shows the form
again with what was not accepted, and nothing changed)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from legato.client import Client
from legato.errors import InvalidRunInputError, ParameterValidationError
from legato.server.security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    check_csrf,
    session_value,
    token_matches,
)
from legato.server.ui.forms import form_fields, parse_form, submitted_values
from legato.server.ui.pages import (
    deployment_context,
    require_session,
    run_page_context,
)
from legato.server.ui.render import client_of, render

ClientDep = Annotated[Client, Depends(client_of)]


async def read_form(request: Request) -> dict[str, str]:
    """The submitted form (urlencoded), after its CSRF token is checked."""
    body = (await request.body()).decode("utf-8", errors="replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    check_csrf(request, form.get(CSRF_FIELD))
    return form


FormDep = Annotated[dict[str, str], Depends(read_form)]
router = APIRouter(include_in_schema=False)
acting = APIRouter(dependencies=[Depends(require_session)], include_in_schema=False)


def _back_to_run(request: Request, run_id: str, notice: str) -> Response:
    url = request.url_for("ui_run", run_id=run_id)
    return RedirectResponse(f"{url}?{urlencode({'notice': notice})}", status_code=303)


@acting.post("/runs/{run_id}/cancel", name="ui_run_cancel")
def cancel(request: Request, run_id: str, form: FormDep, client: ClientDep) -> Response:
    run = client.cancel_run(run_id)
    return _back_to_run(request, run.id, f"Cancellation requested: the run is {run.state.value}.")


@acting.post("/runs/{run_id}/retry", name="ui_run_retry")
def retry(request: Request, run_id: str, form: FormDep, client: ClientDep) -> Response:
    run = client.retry_run(run_id)
    return _back_to_run(
        request,
        run.id,
        f"Queued again on '{run.work_queue}': a worker picks it up and replays its "
        f"completed tasks.",
    )


@acting.post("/runs/{run_id}/resume", name="ui_run_resume")
def resume(request: Request, run_id: str, form: FormDep, client: ClientDep) -> Response:
    run = client.resolve_run(run_id)
    schema = run.pause.input_schema if run.pause is not None else None
    raw = submitted_values(form)
    run_input = parse_form(schema, raw) if schema else None
    try:
        queued = client.requeue_run(run.id, run_input)
    except InvalidRunInputError as exc:
        # The run stays paused; the form comes back with what was typed.
        context = run_page_context(client, run.id)
        context["input_fields"] = form_fields(schema, submitted=raw)
        context["problems"] = list(exc.problems)
        return render(request, "run.html", context, status_code=422, section="ui_runs")
    return _back_to_run(request, queued.id, "Input accepted: the run is queued to resume.")


@acting.post("/deployments/{name}/trigger", name="ui_deployment_trigger")
def trigger(request: Request, name: str, form: FormDep, client: ClientDep) -> Response:
    raw = submitted_values(form)
    schema = client.parameter_schema(name)
    try:
        run = client.trigger(name, parse_form(schema, raw))
    except ParameterValidationError as exc:
        context = deployment_context(client, name, submitted=raw)
        context["problems"] = list(exc.problems)
        return render(request, "deployment.html", context, status_code=422)
    url = request.url_for("ui_deployment", name=name)
    return RedirectResponse(f"{url}?{urlencode({'queued': run.id})}", status_code=303)


@acting.post("/deployments/{name}/pause", name="ui_deployment_pause")
def pause_deployment(request: Request, name: str, form: FormDep, client: ClientDep) -> Response:
    client.pause_deployment(name)
    return RedirectResponse(request.url_for("ui_deployment", name=name), status_code=303)


@acting.post("/deployments/{name}/resume", name="ui_deployment_resume")
def resume_deployment(request: Request, name: str, form: FormDep, client: ClientDep) -> Response:
    client.resume_deployment(name)
    return RedirectResponse(request.url_for("ui_deployment", name=name), status_code=303)


def _local(next_url: str) -> str:
    """Only a path on this server: never send the browser elsewhere after login."""
    return next_url if next_url.startswith("/") and not next_url.startswith("//") else "/"


@router.get("/login", name="ui_login")
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", {"next": _local(next), "failed": False})


@router.post("/login")
def login(request: Request, form: FormDep) -> Response:
    token: str | None = request.app.state.token
    next_url = _local(form.get("next", "/"))
    if token is None:
        return RedirectResponse(next_url, status_code=303)
    if not token_matches(form.get("token", ""), token):
        return render(request, "login.html", {"next": next_url, "failed": True}, status_code=401)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=14 * 24 * 3600,
    )
    return response


@router.post("/logout", name="ui_logout")
def logout(request: Request, form: FormDep) -> Response:
    response = RedirectResponse(request.url_for("ui_login"), status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
