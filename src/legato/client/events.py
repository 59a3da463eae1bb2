"""Events through the client: emit, list, follow and prune (mixed into `Client`).

Emitting checks each event (`legato.engine.events.build_event`) before the store
sees it. Listing is for people (newest first, paged back by ``seq``); following
reads in the store's order from a cursor (`Store.read_events`), which misses no
event, and filters here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato._event_records import Event, EventBatch
from legato.client.checks import INT32_MAX, check_int
from legato.engine.events import build_event
from legato.errors import ConfigurationError
from legato.records import utcnow

if TYPE_CHECKING:
    from legato.store.base import Store

MAX_BATCH = 1000  # events emitted in one call (POST /api/events)
FOLLOW_POLL_SECONDS = 0.2
_CURSOR = re.compile(r"[0-9]{1,18}(:[0-9]{1,18})?")


def event_matches(event: Event, names: Sequence[str], resource_id: str | None) -> bool:
    """True when ``event`` has one of ``names`` (exact, or a prefix ending in ``*``;
    none: any) and names ``resource_id`` as its own or a related resource (None: any)."""
    if names and not any(
        event.event.startswith(name[:-1]) if name.endswith("*") else event.event == name
        for name in names
    ):
        return False
    return resource_id is None or (
        event.resource_id == resource_id or resource_id in event.related_ids()
    )


def check_event_names(names: Iterable[str]) -> list[str]:
    """Name patterns to filter by: exact names or prefixes ending in ``*``."""
    checked = []
    for name in names:
        if not isinstance(name, str) or not name.strip() or "*" in name[:-1]:
            raise ConfigurationError(
                f"invalid event name pattern {name!r}: give a name "
                "('legato.flow-run.Failed') or a prefix ending in * ('legato.flow-run.*')"
            )
        checked.append(name.strip())
    return checked


class EventClientOps:
    """The event part of `legato.client.Client`."""

    @property
    def store(self) -> Store:
        raise NotImplementedError  # provided by Client

    def emit_event(
        self,
        event: str,
        resource: Mapping[str, str],
        related: Iterable[Mapping[str, str]] | None = (),
        payload: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        occurred: datetime | None = None,
        follows: str | None = None,
    ) -> str:
        """Check and store one event; returns its id (an id stored before keeps its
        first event)."""
        checked = build_event(
            event, resource, related, payload, id=id, occurred=occurred, follows=follows
        )
        self.store.emit_events([checked])
        return checked.id

    def emit_events(self, events: Sequence[Event]) -> list[str]:
        """Store checked events (see `build_event`) in one transaction; their ids."""
        if len(events) > MAX_BATCH:
            raise ConfigurationError(
                f"{len(events)} events in one call; send at most {MAX_BATCH} at a time"
            )
        if events:
            self.store.emit_events(list(events))
        return [event.id for event in events]

    def get_event(self, event_id: str) -> Event | None:
        return self.store.get_event(event_id)

    def list_events(
        self,
        *,
        names: Sequence[str] = (),
        resource_id: str | None = None,
        since: datetime | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Events newest first, filtered by name patterns, resource and time;
        ``before_seq`` (the ``seq`` of the last event of a page) pages back."""
        check_int(limit, "the number of events to list (limit)", low=1, high=INT32_MAX)
        return self.store.list_events(
            names=check_event_names(names),
            resource_id=resource_id or None,
            since=since,
            before_seq=before_seq,
            limit=limit,
        )

    def events_cursor(self) -> str:
        """A cursor after every event stored so far: read from it to see only new ones."""
        return self.store.events_cursor()

    def read_new_events(
        self,
        after: str,
        *,
        names: Sequence[str] = (),
        resource_id: str | None = None,
        limit: int = 500,
    ) -> EventBatch:
        """Events stored after the cursor ``after`` (in store order) that match the
        filters, and the cursor to read from next time (past the ones filtered out)."""
        check_int(limit, "the number of events to read (limit)", low=1, high=INT32_MAX)
        patterns = check_event_names(names)
        self._check_cursor(after)
        batch = self.store.read_events(after, limit=limit)
        kept = [e for e in batch.events if event_matches(e, patterns, resource_id or None)]
        return EventBatch(events=kept, cursor=batch.cursor)

    def follow_events(
        self,
        *,
        names: Sequence[str] = (),
        resource_id: str | None = None,
        after: str | None = None,
        poll_seconds: float = FOLLOW_POLL_SECONDS,
        stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[Event]:
        """Yield matching events as they are stored, from ``after`` (default: now),
        until ``stop()`` is true (checked between reads). Misses none: it reads in
        the store's order from a cursor."""
        cursor = self.events_cursor() if after is None else after
        while not stop():
            batch = self.read_new_events(cursor, names=names, resource_id=resource_id)
            moved = batch.cursor != cursor
            cursor = batch.cursor
            yield from batch.events
            if not moved:
                time.sleep(poll_seconds)

    def prune_events(self, older_than: timedelta) -> int:
        """Delete events received longer ago than ``older_than``; how many went."""
        if older_than.total_seconds() <= 0:
            raise ConfigurationError("the age of events to prune must be more than 0 seconds")
        return self.store.prune_events(received_before=utcnow() - older_than)

    def _check_cursor(self, cursor: str) -> None:
        current = self.store.events_cursor()
        if _CURSOR.fullmatch(cursor) is None or (":" in cursor) != (":" in current):
            raise ConfigurationError(
                f"event cursor {cursor[:60]!r} is not a cursor of this store; start again "
                "without one (or with the cursor an earlier answer gave)"
            )
