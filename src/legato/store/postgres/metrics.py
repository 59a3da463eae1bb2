"""Metric trigger reads on PostgreSQL (see `legato.store.base_metrics.MetricOps`)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from legato.errors import StoreError
from legato.records import FlowRun
from legato.store.base_metrics import (
    EVENT_COUNT_BATCH,
    FOLD_BATCH,
    INDEX_MARGIN,
    FlowRunCountRow,
    HistogramRow,
    RunEvent,
    TaskRunCountRow,
    fold_rows,
    fold_run_events,
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

    def fold_run_metrics(self, *, batch: int = FOLD_BATCH) -> int:
        """Fold the flow run state events recorded since the metrics watermark (at most
        ``batch`` events, of transactions older than every open one) into the metric
        tables; returns a positive number when the watermark moved, 0 when there was
        nothing new."""

        def fold(conn: PooledConnection) -> int:
            with conn.transaction(), conn.cursor() as cursor:
                mark = cursor.execute(QUERIES["lock_flow_run_metric_mark"]).fetchone()
                if mark is None:
                    raise StoreError(
                        "the PostgreSQL store returned no flow run metric mark; check that "
                        "its schema is complete (legato migrates it when it opens the store)"
                    )
                txid, seq = mark
                end = cursor.execute(
                    QUERIES["flow_run_metric_batch_end"], (txid, seq, batch)
                ).fetchone()
                if end is None:
                    return 0
                rows = cursor.execute(
                    QUERIES["flow_run_metric_events"], (txid, seq, end[0], end[1])
                ).fetchall()
                found = fold_run_events(
                    [
                        RunEvent(
                            run_id=row[0],
                            from_state=row[1],
                            to_state=row[2],
                            flow=row[3],
                            deployment=row[4],
                            work_queue=row[5],
                            related=None if row[6] is None else list(row[6]),
                            duration=row[7],
                        )
                        for row in rows
                    ]
                )
                newest: dict[str, datetime] = {}
                if found.ended:
                    tasks = cursor.execute(
                        QUERIES["flow_run_metric_tasks"], (sorted(found.ended),)
                    ).fetchall()
                    for run_id, task, state, cached, duration, ended in tasks:
                        found.count_task(found.ended[run_id], task, state, bool(cached), duration)
                        newest[run_id] = max(newest.get(run_id, ended), ended)
                marks = sorted(newest.items())
                counts, histograms, task_counts = fold_rows(found)
                # In key order: two writers of the same rows lock them in one order.
                for query, params in (
                    ("add_flow_run_counts", sorted(counts)),
                    ("add_flow_run_histogram", sorted(histograms)),
                    ("add_task_run_counts", sorted(task_counts)),
                    ("set_task_run_mark", marks),
                ):
                    if params:
                        cursor.executemany(QUERIES[query], params)
                cursor.execute(QUERIES["set_flow_run_metric_mark"], (end[0], end[1]))
                return len(rows) or 1

        # Nothing new (most scrapes): two reads, no row locked, nothing written.
        found = self._db.fetchall(QUERIES["flow_run_metric_mark"], ())
        if found and not self._db.fetchall(
            QUERIES["flow_run_metric_batch_end"], (found[0][0], found[0][1], 1)
        ):
            return 0
        return self._db.run(fold)

    def metric_run_counts(self) -> list[FlowRunCountRow]:
        self.fold_run_metrics()
        return [
            FlowRunCountRow(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]))
            for row in self._db.fetchall(QUERIES["metric_flow_run_counts"], ())
        ]

    def metric_histograms(self) -> list[HistogramRow]:
        self.fold_run_metrics()
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
        self.fold_run_metrics()
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
