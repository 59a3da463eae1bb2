"""Metric trigger reads on PostgreSQL (see `legato.store.base_metrics.MetricOps`)."""

from __future__ import annotations

import math
from datetime import datetime

from legato.records import FlowRun
from legato.store.base_metrics import (
    INDEX_MARGIN,
    FlowRunCountRow,
    HistogramRow,
    TaskRunCountRow,
)
from legato.store.postgres import rows
from legato.store.postgres.connection import Database
from legato.store.postgres.sql import QUERIES


class PostgresMetrics:
    """The metric part of the store contract."""

    _db: Database

    def _runs(self, query: str, since: datetime, limit: int) -> list[FlowRun]:
        params = (since - INDEX_MARGIN, since, limit)
        return [rows.flow_run_from_row(row) for row in self._db.fetchall(QUERIES[query], params)]

    def list_finished_runs(self, *, since: datetime, limit: int = 5000) -> list[FlowRun]:
        return self._runs("list_finished_runs", since, limit)

    def list_started_runs(self, *, since: datetime, limit: int = 5000) -> list[FlowRun]:
        return self._runs("list_started_runs", since, limit)

    def metric_run_counts(self) -> list[FlowRunCountRow]:
        return [
            FlowRunCountRow(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]))
            for row in self._db.fetchall(QUERIES["metric_flow_run_counts"], ())
        ]

    def metric_histograms(self) -> list[HistogramRow]:
        return [
            HistogramRow(
                row[0],
                row[1],
                row[2],
                math.inf if row[3] < 0 else float(row[3]),
                int(row[4]),
                float(row[5]),
            )
            for row in self._db.fetchall(QUERIES["metric_flow_run_histograms"], ())
        ]

    def metric_queue_oldest(self) -> dict[str, datetime]:
        found = self._db.fetchall(QUERIES["metric_queue_oldest"], ())
        return {row[0]: row[1] for row in found if row[1] is not None}

    def metric_task_counts(self) -> list[TaskRunCountRow]:
        return [
            TaskRunCountRow(row[0], row[1], row[2], int(row[3]), int(row[4]))
            for row in self._db.fetchall(QUERIES["metric_task_run_counts"], ())
        ]
