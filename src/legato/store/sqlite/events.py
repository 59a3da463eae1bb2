"""Events on SQLite (see `legato.store.base_events.EventOps`).

Mixed into `SQLiteStore`. State-change events are written by the triggers of
migration 0013; these operations add other events and read them. SQLite has one
writer at a time, so ``seq`` order is commit order and a cursor is just a seq.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from legato._event_records import Event, EventBatch
from legato.errors import StoreError
from legato.store.base_events import event_from_row, list_events_where
from legato.store.notifications import EVENTS_STORED
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _event(row: Sequence[Any]) -> Event:
    return event_from_row(
        row,
        occurred=rows.from_epoch(row[3]),  # type: ignore[arg-type]
        received=rows.from_epoch(row[4]),  # type: ignore[arg-type]
        decode=True,
    )


def _seq_of(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    try:
        return int(cursor)
    except ValueError:
        raise StoreError(
            f"event cursor {cursor!r} is not a cursor of this SQLite store; start again without one"
        ) from None


class SQLiteEvents:
    """The events part of the store contract."""

    _db: Database

    def emit_events(self, events: Sequence[Event]) -> list[int | None]:
        received = time.time()
        params = [
            (
                event.id,
                event.event,
                rows.epoch(event.occurred),
                received,
                event.resource_id,
                _encode(dict(event.resource)),
                _encode([dict(r) for r in event.related]),
                _encode(dict(event.payload)),
                event.follows,
            )
            for event in events
        ]
        query = QUERIES["insert_event"]

        def write(conn: sqlite3.Connection) -> list[int | None]:
            seqs: list[int | None] = []
            for one in params:
                row = conn.execute(query, one).fetchone()
                seqs.append(None if row is None else int(row[0]))
            if any(seq is not None for seq in seqs):
                conn.execute(QUERIES["notify"], (EVENTS_STORED, ""))
            return seqs

        return self._db.write(write)

    def get_event(self, event_id: str) -> Event | None:
        row = self._db.fetchone(QUERIES["get_event"], (event_id,))
        return None if row is None else _event(row)

    def read_events(self, after: str | None, *, limit: int = 500) -> EventBatch:
        seq = _seq_of(after)
        found = self._db.fetchall(QUERIES["read_events"], (seq, limit))
        events = [_event(row) for row in found]
        return EventBatch(events=events, cursor=str(events[-1].seq) if events else str(seq))

    def events_cursor(self) -> str:
        return str(self._db.fetchone(QUERIES["last_event_seq"], ())[0])

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
            mark="?",
            when=rows.epoch,
        )
        sql = QUERIES["list_events"].replace("{where}", where)
        return [_event(row) for row in self._db.fetchall(sql, (*params, limit))]

    def prune_events(self, *, received_before: datetime, batch_size: int = 1000) -> int:
        before = rows.epoch(received_before)
        total = 0
        while True:

            def prune(conn: sqlite3.Connection) -> int:
                conn.execute(QUERIES["prune_event_resources"], (before, batch_size))
                return conn.execute(QUERIES["prune_events"], (before, batch_size)).rowcount

            deleted = self._db.write(prune)
            total += deleted
            if deleted < batch_size:
                return total
