"""The Automations pages: every automation with its last firing, and one automation's
open buckets and firings with their events and each action's state or error."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from legato.automations import service
from legato.client import Client
from legato.server.ui.pages import require_session
from legato.server.ui.render import client_of, render

router = APIRouter(dependencies=[Depends(require_session)], include_in_schema=False)
ClientDep = Annotated[Client, Depends(client_of)]


@router.get("/automations", response_class=HTMLResponse, name="ui_automations")
def automations_page(request: Request, client: ClientDep) -> Response:
    store = client.store
    automations = [service.summary(store, a) for a in store.list_automations()]
    return render(
        request, "automations.html", {"automations": automations}, section="ui_automations"
    )


@router.get("/automations/{name}", response_class=HTMLResponse, name="ui_automation")
def automation_page(request: Request, client: ClientDep, name: str) -> Response:
    report = service.explain(client.store, name, limit=50)
    return render(request, "automation.html", {"a": report}, section="ui_automations")
