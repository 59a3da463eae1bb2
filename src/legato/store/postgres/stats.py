"""Run statistics on PostgreSQL: runs per time bucket and state, durations per flow.

Mixed into `PostgresStore`. Each is one read-only statement.
"""

from __future__ import annotations

from datetime import datetime

from legato.records import FlowDurationStats, RunCount
from legato.store.base import as_utc, check_bucket_seconds, duration_stats, run_counts
from legato.store.postgres import rows
from legato.store.postgres.connection import Database
from legato.store.postgres.sql import QUERIES


class PostgresRunStats:
    """The statistics part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def flow_run_stats(self, *, since: datetime, bucket_seconds: int) -> list[RunCount]:
        check_bucket_seconds(bucket_seconds)
        at = as_utc(since)
        found = self._db.fetchall(QUERIES["flow_run_stats"], (at, bucket_seconds, at))
        return run_counts(found, since, bucket_seconds, rows.state_of)

    def flow_duration_stats(self, *, since: datetime, limit: int = 10) -> list[FlowDurationStats]:
        if limit <= 0:
            return []
        found = self._db.fetchall(QUERIES["flow_duration_stats"], (as_utc(since), limit))
        return duration_stats(found)
