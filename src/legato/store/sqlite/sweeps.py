"""The leader's sweeps on SQLite (see `legato.store.base_sweeps.SweepOps`).

Mixed into `SQLiteStore`. Deadlines are armed and disarmed by the triggers of
migration 0017; firing one marks it and stores its event in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from legato._event_records import Event
from legato.deadlines import RunDeadline
from legato.records import FlowRun
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_CANCELLED_AT_ONCE = ("paused", "scheduled", "pending", "crashed")


def _deadline(row: Sequence[Any]) -> RunDeadline:
    return RunDeadline(
        run_id=row[0],
        index=int(row[1]),
        reference=row[2],
        within_seconds=float(row[3]),
        action=row[4],
        due_at=rows.from_epoch(row[5]),
        fired_at=rows.from_epoch(row[6]),
    )


class SQLiteSweeps:
    """The sweeps part of the store contract."""

    _db: Database

    def list_late_runs(
        self, *, due_before: datetime, due_after: datetime | None = None, limit: int = 500
    ) -> list[FlowRun]:
        params = (rows.epoch(due_before), rows.epoch(due_after or _EARLIEST), limit)
        return [
            rows.flow_run_from_row(row)
            for row in self._db.fetchall(QUERIES["list_late_runs"], params)
        ]

    def add_run_deadlines(self, deadlines: Sequence[RunDeadline]) -> None:
        params = [
            (d.run_id, d.index, d.reference, d.within_seconds, d.action, rows.to_epoch(d.due_at))
            for d in deadlines
        ]
        if params:
            self._db.write(lambda conn: conn.executemany(QUERIES["add_run_deadline"], params))

    def list_run_deadlines(self, run_id: str) -> list[RunDeadline]:
        return [
            _deadline(row) for row in self._db.fetchall(QUERIES["list_run_deadlines"], (run_id,))
        ]

    def due_deadlines(self, *, now: datetime, limit: int = 500) -> list[RunDeadline]:
        found = self._db.fetchall(QUERIES["due_deadlines"], (rows.epoch(now), limit))
        return [_deadline(row) for row in found]

    def fire_deadline(self, run_id: str, index: int, *, now: datetime, event: Event) -> bool:
        at = rows.epoch(now)
        event_params = (
            event.id,
            event.event,
            rows.epoch(event.occurred),
            time.time(),
            event.resource_id,
            _encode(dict(event.resource)),
            _encode([dict(r) for r in event.related]),
            _encode(dict(event.payload)),
            event.follows,
        )

        def fire(conn: sqlite3.Connection) -> bool:
            row = conn.execute(QUERIES["fire_deadline"], (at, run_id, index)).fetchone()
            if row is None:
                return False
            conn.execute(QUERIES["insert_event"], event_params).fetchall()
            if row[0] == "cancel":
                state = conn.execute(QUERIES["get_run_state"], (run_id,)).fetchone()
                if state is not None and state[0] == "running":
                    conn.execute(QUERIES["set_cancel_requested"], (run_id,))
                elif state is not None and state[0] in _CANCELLED_AT_ONCE:
                    conn.execute(QUERIES["cancel_flow_run"], (at, run_id))
            return True

        return self._db.write(fire)
