"""The Events page: events newest first, filtered by name and resource, with new
ones added live by a small script (static/events.js) that polls
``/api/events/stream`` from the cursor the page was rendered at."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from legato._event_records import Event
from legato.client import Client
from legato.client.events import check_event_names
from legato.client.views import shorten
from legato.errors import ConfigurationError
from legato.server.ui.pages import require_session
from legato.server.ui.render import client_of, render

EVENTS_PAGE = 100
PAYLOAD_SHOWN = 80

router = APIRouter(dependencies=[Depends(require_session)], include_in_schema=False)
ClientDep = Annotated[Client, Depends(client_of)]


def event_row(event: Event) -> dict[str, Any]:
    """What the page shows of an event (the script builds the same from the API's JSON)."""
    payload = json.dumps(dict(event.payload), ensure_ascii=False) if event.payload else ""
    details = {
        "id": event.id,
        "resource": dict(event.resource),
        "related": [dict(r) for r in event.related],
        "payload": dict(event.payload),
        "follows": event.follows,
    }
    return {
        "id": event.id,
        "occurred": event.occurred,
        "name": event.event,
        "resource_id": event.resource_id,
        "payload": shorten(payload, PAYLOAD_SHOWN),
        "details": json.dumps(details, indent=2, ensure_ascii=False),
    }


@router.get("/events", response_class=HTMLResponse, name="ui_events")
def events_page(
    request: Request,
    client: ClientDep,
    name: str = "",
    resource: str = "",
    before: str = "",
) -> Response:
    problems: list[str] = []
    names: list[str] = []
    try:
        names = check_event_names(part for part in re.split(r"[\s,]+", name) if part)
    except ConfigurationError as exc:
        problems.append(f"'name': {exc}")
    before_seq = None
    if before:
        if before.isdigit() and 0 < int(before) <= 2**62:
            before_seq = int(before)
        else:
            problems.append(f"'before': {before[:40]!r} is not a position in the events")
    resource = resource.strip()
    live = before_seq is None and not problems
    # The cursor first: an event stored while the page is read is added by the script.
    cursor = client.events_cursor() if live else None
    found: list[Event] = []
    if not problems:
        found = client.list_events(
            names=names, resource_id=resource or None, before_seq=before_seq, limit=EVENTS_PAGE + 1
        )
    page = found[:EVENTS_PAGE]
    kept = {k: v for k, v in (("name", name), ("resource", resource)) if v}
    next_url = None
    if len(found) > EVENTS_PAGE:
        next_url = "?" + urlencode({**kept, "before": str(page[-1].seq)})
    stream_query = urlencode(
        [("name", n) for n in names] + ([("resource", resource)] * bool(resource))
    )
    return render(
        request,
        "events.html",
        {
            "events": [event_row(e) for e in page],
            "filters": {"name": name, "resource": resource},
            "problems": problems,
            "next_url": next_url,
            "first_page_url": ("?" + urlencode(kept)) if before else None,
            "cursor": cursor,
            "stream_query": stream_query,
        },
        status_code=422 if problems else 200,
        section="ui_events",
    )
