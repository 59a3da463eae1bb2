"""The Notifications page: the channels (secrets never shown) and the outbox, newest
first, filtered by state and channel, so dead letters and their errors are visible."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from legato.client import Client
from legato.notify.channels import shown_config
from legato.server.ui.pages import require_session
from legato.server.ui.render import client_of, render

DELIVERIES_PAGE = 200
STATES = ("pending", "sending", "delivered", "dead")

router = APIRouter(dependencies=[Depends(require_session)], include_in_schema=False)
ClientDep = Annotated[Client, Depends(client_of)]


@router.get("/notifications", response_class=HTMLResponse, name="ui_notifications")
def notifications_page(
    request: Request, client: ClientDep, state: str = "", channel: str = ""
) -> Response:
    store = client.store
    problems: list[str] = []
    if state and state not in STATES:
        problems.append(f"'state': {state[:40]!r} is not one of {', '.join(STATES)}")
    channels: list[dict[str, Any]] = [
        {
            "name": c.name,
            "type": c.type,
            "settings": ", ".join(f"{k}={v}" for k, v in shown_config(c.type, c.config).items()),
        }
        for c in store.list_notification_channels()
    ]
    deliveries = []
    if not problems:
        deliveries = store.list_deliveries(
            state=state or None, channel=channel.strip() or None, limit=DELIVERIES_PAGE
        )
    return render(
        request,
        "notifications.html",
        {
            "channels": channels,
            "deliveries": deliveries,
            "filters": {"state": state, "channel": channel},
            "states": STATES,
            "problems": problems,
        },
        section="ui_notifications",
    )
