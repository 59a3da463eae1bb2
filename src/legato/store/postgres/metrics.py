"""Metric trigger reads on PostgreSQL (see `legato.store.base_metrics.MetricOps`)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from legato.errors import StoreError
from legato.records import FlowRun
from legato.store.base_metrics import (
    EVENT_COUNT_BATCH,
    INDEX_MARGIN,
    FlowRunCountRow,
    HistogramRow,
    TaskRunCountRow,
)
from legato.store.postgres import rows
from legato.store.postgres.connection import Database, PooledConnection
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

    def _attempt_end(self, sql: str, params: tuple[Any, ...], run_id: str, replayed: int) -> int:
        """Run one fenced attempt-end statement (it returns the rows it changed); with
        ``replayed`` calls, add them to the flow's replay count in the same transaction."""
        if replayed <= 0:
            return int(self._db.fetchone(sql, params)[0])

        def both(conn: PooledConnection) -> int:
            with conn.transaction():
                cursor = conn.store_cursor()
                row = cursor.execute(sql, params).fetchone()
                changed = 0 if row is None else int(row[0])
                if changed:
                    cursor.execute(QUERIES["add_task_replays"], (replayed, run_id))
                return changed

        return self._db.run(both)

    def metric_task_replays(self) -> dict[str, int]:
        found = self._db.fetchall(QUERIES["metric_task_replay_counts"], ())
        return {row[0]: int(row[1]) for row in found}

    def metric_event_counts(self, *, batch: int = EVENT_COUNT_BATCH) -> dict[str, int]:
        def count(conn: PooledConnection) -> dict[str, int]:
            with conn.transaction(), conn.cursor() as cursor:
                mark = cursor.execute(QUERIES["lock_event_count_mark"]).fetchone()
                if mark is None:
                    raise StoreError(
                        "the PostgreSQL store returned no event count mark; check that its "
                        "schema is complete (legato migrates it when it opens the store)"
                    )
                txid, seq = mark
                found = cursor.execute(QUERIES["count_new_events"], (txid, seq, batch)).fetchall()
                if found:
                    cursor.executemany(
                        QUERIES["add_event_count"], [(row[0], row[1]) for row in found]
                    )
                    cursor.execute(QUERIES["set_event_count_mark"], (found[0][2], found[0][3]))
                totals = cursor.execute(QUERIES["metric_event_counts"]).fetchall()
            return {row[0]: int(row[1]) for row in totals}

        return self._db.run(count)
