"""The events part of the store contract (mixed into `legato.store.base.Store`).

State changes of flow runs and failed task runs write their events inside the
store, in the same transaction as the change (database triggers beside each
backend's SQL); these operations add events from elsewhere and read them.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded when first used, not by `import legato`
    from legato._event_records import Event, EventBatch


def event_from_row(
    row: Sequence[Any], *, occurred: datetime, received: datetime, decode: bool
) -> Event:
    """An Event from the event columns (seq, id, event, occurred, received, resource,
    related, payload, follows): the backends' shared mapping. SQLite hands JSON as text
    (``decode``), PostgreSQL as decoded values; each converts its own times."""
    from legato._event_records import Event

    resource, related, payload = row[5], row[6], row[7]
    if decode:
        resource, related, payload = json.loads(resource), json.loads(related), json.loads(payload)
    return Event(
        seq=row[0],
        id=row[1],
        event=row[2],
        occurred=occurred,
        received=received,
        resource=resource,
        related=tuple(related),
        payload=payload,
        follows=row[8],
    )


def event_name_prefix(pattern: str) -> tuple[str, bool]:
    """``("legato.flow-run.", True)`` for ``legato.flow-run.*``; ``(name, False)`` for an
    exact name. Only a trailing ``*`` is a wildcard."""
    if pattern.endswith("*"):
        return pattern[:-1], True
    return pattern, False


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching names that start with ``prefix`` (escape char ``\\``)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def list_events_where(
    *,
    names: Sequence[str],
    resource_id: str | None,
    since: datetime | None,
    until: datetime | None,
    before_seq: int | None,
    mark: str,
    when: Callable[[datetime], Any],
) -> tuple[str, list[Any]]:
    """The WHERE clause of ``list_events`` and its parameters, for a backend whose
    parameter mark is ``mark`` (``?``, ``%s``) and whose times ``when`` converts."""
    conditions: list[str] = []
    params: list[Any] = []
    if names:
        alternatives = []
        for pattern in names:
            prefix, wildcard = event_name_prefix(pattern)
            if wildcard:
                alternatives.append(f"event LIKE {mark} ESCAPE '\\'")
                params.append(like_prefix(prefix))
            else:
                alternatives.append(f"event = {mark}")
                params.append(prefix)
        conditions.append("(" + " OR ".join(alternatives) + ")")
    if resource_id is not None:
        conditions.append(f"seq IN (SELECT seq FROM event_resources WHERE resource_id = {mark})")
        params.append(resource_id)
    if since is not None:
        conditions.append(f"occurred >= {mark}")
        params.append(when(since))
    if until is not None:
        conditions.append(f"occurred < {mark}")
        params.append(when(until))
    if before_seq is not None:
        conditions.append(f"seq < {mark}")
        params.append(before_seq)
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), params


class EventOps(ABC):
    """Event operations every backend provides."""

    @abstractmethod
    def emit_events(self, events: Sequence[Event]) -> list[int | None]:
        """Store ``events`` in one transaction, in order. An id already stored is kept as
        it is (idempotent by id): its slot in the answer is None; the others get their
        ``seq``. The events are valid already (see `legato.events`)."""

    @abstractmethod
    def get_event(self, event_id: str) -> Event | None:
        """The stored event with this id."""

    @abstractmethod
    def read_events(self, after: str | None, *, limit: int = 500) -> EventBatch:
        """Events in store order after the cursor ``after`` (None: from the first),
        at most ``limit``. An event a reader has passed never appears later behind
        its cursor: the order in which a reader that keeps its cursor sees every event
        exactly once (the automation evaluator's)."""

    @abstractmethod
    def events_cursor(self) -> str:
        """A cursor after every event stored so far (a reader that starts now)."""

    @abstractmethod
    def list_events(
        self,
        *,
        names: Sequence[str] = (),
        resource_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Events for people, newest first, filtered: ``names`` are exact names or
        prefixes ending in ``*`` (any matches), ``resource_id`` the event's own or a
        related resource; ``before_seq`` pages back. (To follow new events, read them
        with `read_events` and filter: that order misses none.)"""

    @abstractmethod
    def prune_events(self, *, received_before: datetime, batch_size: int = 1000) -> int:
        """Delete events received before ``received_before``; returns how many."""
