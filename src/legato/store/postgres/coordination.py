"""Coordination on PostgreSQL: claiming queued runs, leases, LISTEN/NOTIFY.

Mixed into `PostgresStore`. A claim is a short transaction: a ``FOR UPDATE
SKIP LOCKED`` pick, then the UPDATE, so any number of processes on any number
of machines can claim at once and each run goes to one of them. A run with a
concurrency key is taken under an advisory lock on that key after counting
the key's active runs again, so two claimers cannot both take its last slot.
Notifications are PostgreSQL's own: a listener keeps one connection of its
own (outside the pool, which hands connections from thread to thread) in
LISTEN mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from legato.errors import StoreError
from legato.records import FlowRun, Lease, Notification, RunOwner, WorkerInfo
from legato.store.notifications import (
    ChangeListener,
    check_channel,
    check_channels,
    check_payload,
)
from legato.store.postgres import rows
from legato.store.postgres.connection import Connection, Database
from legato.store.postgres.sql import QUERIES

_PICK = QUERIES["pick_flow_run"]
_LOCK_KEY = QUERIES["lock_concurrency_key"]
_COUNT_ACTIVE = QUERIES["count_active_runs"]
_TAKE = QUERIES["take_flow_run"]


def _lease_from_row(row: Any) -> Lease:
    name, holder, generation, acquired_at, expires_at = row
    return Lease(name, holder, generation, acquired_at, expires_at)


class PostgresCoordination:
    """The coordination part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def claim_flow_run(
        self,
        work_queues: Sequence[str],
        owner: RunOwner,
        *,
        now: datetime,
        lease_seconds: float,
    ) -> FlowRun | None:
        queues = list(work_queues)
        lapsed_before = now - timedelta(seconds=lease_seconds)
        take = (owner.token, owner.host, owner.pid, owner.pid_started, now)
        passed_over: list[str] = []

        def claim(conn: Connection) -> tuple[Any, str | None]:
            """(the claimed row, or None; the id of a run passed over at its limit)."""
            with conn.transaction():
                pick = (queues, now, passed_over, lapsed_before, queues)
                found = conn.execute(_PICK, pick).fetchone()
                if found is None:
                    return None, None
                run_id, state, key, limit = found
                if key is not None and state == "scheduled":
                    conn.execute(_LOCK_KEY, (key,))
                    active = conn.execute(_COUNT_ACTIVE, (key,)).fetchone()
                    if active is not None and active[0] >= limit:
                        return None, run_id
                return conn.execute(_TAKE, (*take, run_id)).fetchone(), None

        while True:
            row, over_limit = self._db.run(claim)
            if over_limit is None:
                return None if row is None else rows.flow_run_from_row(row)
            passed_over.append(over_limit)

    def next_due_time(self, work_queues: Sequence[str]) -> datetime | None:
        row = self._db.fetchone(QUERIES["next_due_time"], (list(work_queues),))
        return None if row is None else row[0]

    def acquire_lease(
        self, name: str, holder: str, *, now: datetime, ttl_seconds: float
    ) -> Lease | None:
        params = (name, holder, now, now + timedelta(seconds=ttl_seconds))
        row = self._db.fetchone(QUERIES["acquire_lease"], params)
        return None if row is None else _lease_from_row(row)

    def release_lease(self, name: str, holder: str) -> bool:
        return self._db.execute(QUERIES["release_lease"], (name, holder)) > 0

    def get_lease(self, name: str) -> Lease | None:
        row = self._db.fetchone(QUERIES["get_lease"], (name,))
        return None if row is None else _lease_from_row(row)

    def save_worker(self, worker: WorkerInfo) -> None:
        params = (
            worker.id,
            worker.name,
            worker.host,
            worker.pid,
            worker.concurrency,
            worker.running,
            worker.started,
            worker.heartbeat_at,
            worker.stopped_at,
            rows.to_jsonb(list(worker.queues), "the worker's queues"),
        )
        self._db.execute(QUERIES["save_worker"], params)

    def list_workers(self, *, seen_since: datetime | None = None) -> list[WorkerInfo]:
        since = seen_since or datetime(1970, 1, 1, tzinfo=UTC)
        found = self._db.fetchall(QUERIES["list_workers"], (since,))
        return [
            WorkerInfo(
                id=row[0],
                name=row[1],
                host=row[2],
                pid=row[3],
                concurrency=row[4],
                running=row[5],
                started=row[6],
                heartbeat_at=row[7],
                stopped_at=row[8],
                queues=tuple(row[9]),
            )
            for row in found
        ]

    def delete_workers(self, *, seen_before: datetime) -> int:
        return self._db.execute(QUERIES["delete_workers"], (seen_before,))

    def notify(self, channel: str, payload: str = "") -> None:
        params = (check_channel(channel), check_payload(payload))
        self._db.fetchone(QUERIES["notify"], params)

    def listen(self, channels: Sequence[str]) -> ChangeListener:
        return PostgresListener(self._db, check_channels(channels))


class PostgresListener(ChangeListener):
    """LISTEN on a dedicated autocommit connection; `wait` blocks on its socket."""

    def __init__(self, db: Database, channels: tuple[str, ...]) -> None:
        self.channels = channels
        self._db = db
        conn = db.connect(autocommit=True)
        try:
            for channel in channels:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except psycopg.Error as exc:
            conn.close()
            raise db.error(exc) from None
        self._conn: Connection | None = conn

    def wait(self, timeout: float) -> list[Notification]:
        conn = self._conn
        if conn is None:
            raise StoreError(f"the listener on {self._db.display_url} was closed; create a new one")
        received: list[Notification] = []
        try:
            for notify in conn.notifies(timeout=max(timeout, 0.0), stop_after=1):
                received.append(Notification(notify.channel, notify.payload))
            if received:
                # Whatever else already arrived, without waiting for more.
                for notify in conn.notifies(timeout=0.0):
                    received.append(Notification(notify.channel, notify.payload))
        except psycopg.Error as exc:
            raise self._db.error(exc) from None
        return received

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
