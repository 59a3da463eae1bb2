"""Coordination on SQLite: claiming queued runs, leases, polled notifications.

Mixed into `SQLiteStore`. Every write is one statement inside the store's
BEGIN IMMEDIATE transaction, so SQLite's single writer makes a claim or a
lease change atomic across the processes sharing the file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from legato.errors import StoreError
from legato.records import FlowRun, Lease, Notification, RunOwner, WorkerInfo
from legato.settings import env_float
from legato.store.notifications import (
    DEFAULT_POLL_SECONDS,
    ChangeListener,
    check_channel,
    check_channels,
    check_payload,
)
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES

_CLAIM = QUERIES["claim_flow_run"]


def _lease_from_row(row: Any) -> Lease:
    return Lease(
        name=row[0],
        holder=row[1],
        generation=row[2],
        acquired_at=rows.from_epoch(row[3]),  # type: ignore[arg-type]
        expires_at=rows.from_epoch(row[4]),  # type: ignore[arg-type]
    )


class SQLiteCoordination:
    """The coordination part of the store contract (see `legato.store.base.Store`)."""

    _db: Database
    path: str

    def claim_flow_run(
        self,
        work_queues: Sequence[str],
        owner: RunOwner,
        *,
        now: datetime,
        lease_seconds: float,
    ) -> FlowRun | None:
        queues = rows.to_json(list(work_queues), "the work queue names")
        at = rows.epoch(now)
        params = (
            owner.token,
            owner.host,
            owner.pid,
            owner.pid_started,
            at,
            at,
            queues,
            queues,
            at - lease_seconds,
        )

        def claim(conn: sqlite3.Connection) -> Any:
            return conn.execute(_CLAIM, params).fetchall()

        found = self._db.write(claim)
        return rows.flow_run_from_row(found[0]) if found else None

    def next_due_time(self, work_queues: Sequence[str]) -> datetime | None:
        queues = rows.to_json(list(work_queues), "the work queue names")
        row = self._db.fetchone(QUERIES["next_due_time"], (queues,))
        return None if row is None else rows.from_epoch(row[0])

    def acquire_lease(
        self, name: str, holder: str, *, now: datetime, ttl_seconds: float
    ) -> Lease | None:
        at = rows.epoch(now)
        params = (name, holder, at, at + ttl_seconds)
        found = self._db.write(
            lambda conn: conn.execute(QUERIES["acquire_lease"], params).fetchall()
        )
        return _lease_from_row(found[0]) if found else None

    def release_lease(self, name: str, holder: str) -> bool:
        params = (name, holder)
        return self._db.write(
            lambda conn: conn.execute(QUERIES["release_lease"], params).rowcount > 0
        )

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
            rows.epoch(worker.started),
            rows.epoch(worker.heartbeat_at),
            rows.to_epoch(worker.stopped_at),
            rows.to_json(list(worker.queues), "the worker's queues"),
        )
        self._db.write(lambda conn: conn.execute(QUERIES["save_worker"], params))

    def list_workers(self, *, seen_since: datetime | None = None) -> list[WorkerInfo]:
        since = -1.0 if seen_since is None else rows.epoch(seen_since)
        found = self._db.fetchall(QUERIES["list_workers"], (since,))
        return [
            WorkerInfo(
                id=row[0],
                name=row[1],
                host=row[2],
                pid=row[3],
                concurrency=row[4],
                running=row[5],
                started=rows.from_epoch(row[6]),  # type: ignore[arg-type]
                heartbeat_at=rows.from_epoch(row[7]),  # type: ignore[arg-type]
                stopped_at=rows.from_epoch(row[8]),
                queues=tuple(json.loads(row[9])),
            )
            for row in found
        ]

    def delete_workers(self, *, seen_before: datetime) -> int:
        cutoff = rows.epoch(seen_before)
        return self._db.write(
            lambda conn: conn.execute(QUERIES["delete_workers"], (cutoff,)).rowcount
        )

    def notify(self, channel: str, payload: str = "") -> None:
        params = (check_channel(channel), check_payload(payload))
        self._db.write(lambda conn: conn.execute(QUERIES["notify"], params))

    def listen(self, channels: Sequence[str]) -> ChangeListener:
        return SQLiteListener(self.path, check_channels(channels))


class SQLiteListener(ChangeListener):
    """Polls the per-channel counters on a connection of its own.

    ``PRAGMA data_version`` changes only when another connection commits, so
    an idle poll costs no table read at all.
    """

    def __init__(self, path: str, channels: tuple[str, ...]) -> None:
        self.channels = channels
        self.path = path
        self.interval = env_float("LEGATO_POLL_SECONDS", DEFAULT_POLL_SECONDS)
        self._channels_json = rows.to_json(list(channels), "the channel names")
        try:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {path}: cannot listen: {exc}") from exc
        self._data_version = -1
        self._seen: dict[str, int] = {}
        self._poll()  # the baseline: only later notifications count

    def _poll(self) -> list[Notification]:
        conn = self._conn
        if conn is None:
            raise StoreError(f"the listener on {self.path} was closed; create a new one")
        try:
            data_version = conn.execute("PRAGMA data_version").fetchone()[0]
            if data_version == self._data_version:
                return []
            found = conn.execute(QUERIES["poll_notifications"], (self._channels_json,)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: polling notifications: {exc}") from exc
        first = self._data_version == -1
        self._data_version = data_version
        received = []
        for channel, version, payload in found:
            if version != self._seen.get(channel, 0):
                self._seen[channel] = version
                if not first:
                    received.append(Notification(channel, payload))
        return received

    def wait(self, timeout: float) -> list[Notification]:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            received = self._poll()
            remaining = deadline - time.monotonic()
            if received or remaining <= 0:
                return received
            time.sleep(min(self.interval, remaining))

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
