"""Events on PostgreSQL (see `legato.store.base_events.EventOps`).

Mixed into `PostgresStore`. State-change events are written by the triggers of
migration 0012. Writers commit out of ``seq`` order, so the in-order reader's
cursor is ``txid:seq`` and it reads only transactions older than every open one
(see queries.sql, ``read_events``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from legato._event_records import Event, EventBatch
from legato.errors import StoreError
from legato.store.base_events import event_from_row, list_events_where
from legato.store.notifications import EVENTS_STORED
from legato.store.postgres.connection import Connection, Database
from legato.store.postgres.rows import to_jsonb
from legato.store.postgres.sql import QUERIES


def _same_time(value: datetime) -> datetime:
    return value


def _event(row: Sequence[Any]) -> Event:
    return event_from_row(row, occurred=row[3], received=row[4], decode=False)


def _position(cursor: str | None) -> tuple[str, int]:
    if not cursor:
        return "0", 0
    txid, _, seq = cursor.partition(":")
    if not txid.isdigit() or not seq.isdigit():
        raise StoreError(
            f"event cursor {cursor!r} is not a cursor of this PostgreSQL store; start again "
            f"without one"
        )
    return txid, int(seq)


class PostgresEvents:
    """The events part of the store contract."""

    _db: Database

    def emit_events(self, events: Sequence[Event]) -> list[int | None]:
        query = QUERIES["insert_event"]
        params = [
            (
                event.id,
                event.event,
                event.occurred,
                event.resource_id,
                to_jsonb(dict(event.resource), "the event's resource"),
                to_jsonb([dict(r) for r in event.related], "the event's related resources"),
                to_jsonb(dict(event.payload), "the event's payload"),
                event.follows,
            )
            for event in events
        ]

        def insert(conn: Connection) -> list[int | None]:
            seqs: list[int | None] = []
            with conn.transaction(), conn.cursor() as cursor:
                for one in params:
                    row = cursor.execute(query, one).fetchone()
                    seqs.append(None if row is None else int(row[0]))
                if any(seq is not None for seq in seqs):  # delivered when it commits
                    cursor.execute(QUERIES["notify"], (EVENTS_STORED, ""))
            return seqs

        return self._db.run(insert)

    def get_event(self, event_id: str) -> Event | None:
        row = self._db.fetchone(QUERIES["get_event"], (event_id,))
        return None if row is None else _event(row)

    def read_events(self, after: str | None, *, limit: int = 500) -> EventBatch:
        txid, seq = _position(after)
        found = self._db.fetchall(QUERIES["read_events"], (txid, seq, limit))
        events = [_event(row) for row in found]
        if not found:
            return EventBatch(events=[], cursor=f"{txid}:{seq}")
        last = found[-1]
        return EventBatch(events=events, cursor=f"{last[9]}:{last[0]}")

    def events_cursor(self) -> str:
        return f"{self._db.fetchone(QUERIES['events_cursor'], ())[0]}:0"

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
        where, params = list_events_where(
            names=names,
            resource_id=resource_id,
            since=since,
            until=until,
            before_seq=before_seq,
            mark="%s",
            when=_same_time,
        )
        sql = QUERIES["list_events"].replace("{where}", where)
        return [_event(row) for row in self._db.fetchall(sql, (*params, limit))]

    def prune_events(self, *, received_before: datetime, batch_size: int = 1000) -> int:
        total = 0
        while True:
            row = self._db.fetchone(QUERIES["prune_events"], (received_before, batch_size))
            deleted = int(row[0])
            total += deleted
            if deleted < batch_size:
                return total
