"""Run statistics on SQLite: runs per time bucket and state, durations per flow.

Mixed into `SQLiteStore`. Plain reads (WAL: they never wait for writers).
"""

from __future__ import annotations

from datetime import datetime

from legato.records import FlowDurationStats, RunCount
from legato.store.base import check_bucket_seconds, duration_stats, run_counts
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


class SQLiteRunStats:
    """The statistics part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def flow_run_stats(self, *, since: datetime, bucket_seconds: int) -> list[RunCount]:
        check_bucket_seconds(bucket_seconds)
        at = rows.epoch(since)
        found = self._db.fetchall(QUERIES["flow_run_stats"], (at, bucket_seconds, at))
        return run_counts(found, since, bucket_seconds, rows.state_of)

    def flow_duration_stats(self, *, since: datetime, limit: int = 10) -> list[FlowDurationStats]:
        if limit <= 0:
            return []
        found = self._db.fetchall(QUERIES["flow_duration_stats"], (rows.epoch(since), limit))
        return duration_stats(found)
