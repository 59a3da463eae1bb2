"""Metric trigger reads on SQLite (see `legato.store.base_metrics.MetricOps`)."""

from __future__ import annotations

from datetime import datetime

from legato.records import FlowRun
from legato.store.base_metrics import INDEX_MARGIN
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


class SQLiteMetrics:
    """The metric part of the store contract."""

    _db: Database

    def _runs(self, query: str, since: datetime, limit: int) -> list[FlowRun]:
        params = (rows.epoch(since - INDEX_MARGIN), rows.epoch(since), limit)
        return [rows.flow_run_from_row(row) for row in self._db.fetchall(QUERIES[query], params)]

    def list_finished_runs(self, *, since: datetime, limit: int = 5000) -> list[FlowRun]:
        return self._runs("list_finished_runs", since, limit)

    def list_started_runs(self, *, since: datetime, limit: int = 5000) -> list[FlowRun]:
        return self._runs("list_started_runs", since, limit)
