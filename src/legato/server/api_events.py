"""The REST API's events: emit (one or a batch), list newest first, and read new ones.

``POST /api/events`` takes Prefect's field names (``event``, ``resource``,
``related``, ``payload``, ``id``, ``occurred``, ``follows``); every event is
checked before any is stored, so a batch is stored whole or not at all.
``GET /api/events/stream`` reads in the store's order from a cursor, which
misses no event: the Events page polls it for live updates.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from legato._event_records import Event
from legato.client import Client
from legato.client.events import MAX_BATCH
from legato.engine.events import build_event
from legato.errors import InvalidEventError
from legato.server.api import client_of
from legato.server.errors import error_responses
from legato.server.security import require_token
from legato.server.validation import IsoTime, JsonObject

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(require_token)],
    tags=["events"],
    responses=error_responses(401, 403, 422, 503),
)
ClientDep = Annotated[Client, Depends(client_of)]
MAX_SEQ = 2**62


def _storable_labels(value: dict[str, str]) -> dict[str, str]:
    """Labels any store can hold: valid Unicode, no NUL character."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "text must be valid Unicode: a lone surrogate such as \\ud800 cannot be stored"
        ) from None
    if "\x00" in "".join(value) or "\x00" in "".join(value.values()):
        raise ValueError("labels cannot hold the NUL character")
    return value


Labels = Annotated[dict[str, str], AfterValidator(_storable_labels)]
EventText = Annotated[str, Field(strict=True, min_length=1, max_length=1024)]
EventId = Annotated[str, Field(strict=True, min_length=1, max_length=200)]


class EventBody(BaseModel):
    """One event, in Prefect's shape. ``resource`` needs a ``legato.resource.id``
    (or ``prefect.resource.id``) label; each related resource also a role."""

    model_config = ConfigDict(extra="forbid")

    event: EventText = Field(description="The event's name, e.g. warehouse.table.refreshed.")
    resource: Labels = Field(description="Labels of the resource the event is about.")
    related: list[Labels] = Field(default_factory=list, max_length=100)
    payload: JsonObject = Field(default_factory=dict)
    id: EventId | None = Field(default=None, description="Emitting an id again stores nothing.")
    occurred: IsoTime | None = None
    follows: EventId | None = None


class EmittedBody(BaseModel):
    ids: list[str] = Field(description="The events' ids, in the order sent.")


def _event_dict(event: Event) -> dict[str, Any]:
    return event.to_dict()


@router.post("/events", status_code=202, responses=error_responses(400))
def emit_events(
    client: ClientDep,
    body: Annotated[
        EventBody | Annotated[list[EventBody], Field(min_length=1, max_length=MAX_BATCH)],
        Body(),
    ],
) -> EmittedBody:
    """Store one event or a list of up to 1,000 (all or none); answers their ids."""
    items = body if isinstance(body, list) else [body]
    events = []
    for index, item in enumerate(items):
        try:
            events.append(
                build_event(
                    item.event,
                    item.resource,
                    item.related,
                    item.payload,
                    id=item.id,
                    occurred=item.occurred,
                    follows=item.follows,
                )
            )
        except InvalidEventError as exc:
            if isinstance(body, list):
                raise InvalidEventError(f"event #{index + 1}: {exc}") from None
            raise
    return EmittedBody(ids=client.emit_events(events))


# A list, never None (no default of None): in a query string every value is text, so
# an "anyOf: [array, null]" schema would call a name like "true" invalid data.
NameFilter = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=1024)]],
    Query(
        description="Only this event name, or names starting with a prefix ending in * "
        "(repeatable: any matches)."
    ),
]
ResourceFilter = Annotated[
    str | None,
    Query(max_length=1024, description="Only events about this resource id (own or related)."),
]


@router.get("/events")
def list_events(
    client: ClientDep,
    name: NameFilter = [],  # noqa: B006 (FastAPI copies defaults)
    resource: ResourceFilter = None,
    since: Annotated[IsoTime | None, Query(description="Only events since this time.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_SEQ, description="Page back: the 'next' of the previous page."),
    ] = None,
) -> dict[str, Any]:
    """Events newest first, filtered; ``next`` (when there are more) is the
    ``before`` of the next page."""
    found = client.list_events(
        names=name or (), resource_id=resource, since=since, before_seq=before, limit=limit + 1
    )
    page = found[:limit]
    more = len(found) > limit and bool(page)
    return {"events": [_event_dict(e) for e in page], "next": page[-1].seq if more else None}


@router.get("/events/stream")
def read_new_events(
    client: ClientDep,
    after: Annotated[
        str | None,
        Query(
            max_length=40,
            description="The 'cursor' of the previous answer; without it, the answer has "
            "no events and the cursor to start from.",
        ),
    ] = None,
    name: NameFilter = [],  # noqa: B006 (FastAPI copies defaults)
    resource: ResourceFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    """Events stored after the cursor ``after``, oldest first (none is missed),
    filtered, and the cursor to pass next time."""
    if after is None:
        return {"events": [], "cursor": client.events_cursor()}
    batch = client.read_new_events(after, names=name or (), resource_id=resource, limit=limit)
    return {"events": [_event_dict(e) for e in batch.events], "cursor": batch.cursor}
