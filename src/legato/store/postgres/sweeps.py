"""The leader's sweeps on PostgreSQL (see `legato.store.base_sweeps.SweepOps`).

Mixed into `PostgresStore`. Deadlines are armed and disarmed by the triggers of
migration 0016; firing one marks it and stores its event in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from legato._event_records import Event
from legato.deadlines import RunDeadline
from legato.records import FlowRun
from legato.store.postgres import rows
from legato.store.postgres.connection import Connection, Database
from legato.store.postgres.rows import to_jsonb
from legato.store.postgres.sql import QUERIES

_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def _deadline(row: Sequence[Any]) -> RunDeadline:
    return RunDeadline(
        run_id=row[0],
        index=int(row[1]),
        reference=row[2],
        within_seconds=float(row[3]),
        action=row[4],
        due_at=row[5],
        fired_at=row[6],
    )


class PostgresSweeps:
    """The sweeps part of the store contract."""

    _db: Database

    def list_late_runs(
        self, *, due_before: datetime, due_after: datetime | None = None, limit: int = 500
    ) -> list[FlowRun]:
        params = (due_before, due_after or _EARLIEST, limit)
        return [
            rows.flow_run_from_row(row)
            for row in self._db.fetchall(QUERIES["list_late_runs"], params)
        ]

    def add_run_deadlines(self, deadlines: Sequence[RunDeadline]) -> None:
        params = [
            (d.run_id, d.index, d.reference, d.within_seconds, d.action, d.due_at)
            for d in deadlines
        ]
        if not params:
            return

        def insert(conn: Connection) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(QUERIES["add_run_deadline"], params)

        self._db.run(insert)

    def list_run_deadlines(self, run_id: str) -> list[RunDeadline]:
        return [
            _deadline(row) for row in self._db.fetchall(QUERIES["list_run_deadlines"], (run_id,))
        ]

    def due_deadlines(self, *, now: datetime, limit: int = 500) -> list[RunDeadline]:
        return [_deadline(row) for row in self._db.fetchall(QUERIES["due_deadlines"], (now, limit))]

    def fire_deadline(self, run_id: str, index: int, *, now: datetime, event: Event) -> bool:
        event_params = (
            event.id,
            event.event,
            event.occurred,
            event.resource_id,
            to_jsonb(dict(event.resource), "the event's resource"),
            to_jsonb([dict(r) for r in event.related], "the event's related resources"),
            to_jsonb(dict(event.payload), "the event's payload"),
            event.follows,
        )

        def fire(conn: Connection) -> bool:
            with conn.transaction(), conn.cursor() as cursor:
                row = cursor.execute(QUERIES["fire_deadline"], (now, run_id, index)).fetchone()
                if row is None:
                    return False
                cursor.execute(QUERIES["insert_event"], event_params)
                if row[0] == "cancel":
                    cursor.execute(QUERIES["request_cancellation"], (now, run_id, run_id))
                return True

        return self._db.run(fire)
