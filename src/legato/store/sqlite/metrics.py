"""Metric trigger reads on SQLite (see `legato.store.base_metrics.MetricOps`)."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, datetime

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

    def fold_run_metrics(self, *, batch: int = FOLD_BATCH) -> int:
        """Fold the flow run state events written since the metrics watermark (at most
        ``batch`` events) into the metric tables; returns how far the watermark moved (0
        when there was nothing new)."""

        def batch_end(conn: sqlite3.Connection) -> tuple[int, int | None]:
            row = conn.execute(QUERIES["flow_run_metric_mark"]).fetchone()
            after = 0 if row is None else int(row[0])
            end = conn.execute(QUERIES["flow_run_metric_batch_end"], (after, batch)).fetchone()
            return after, None if end is None or end[0] is None else int(end[0])

        def fold(conn: sqlite3.Connection) -> int:
            after, end = batch_end(conn)  # again, in the write: another scrape may have folded
            if end is None:
                return 0
            events = [
                RunEvent(
                    run_id=row[0],
                    from_state=row[1],
                    to_state=row[2],
                    flow=row[3],
                    deployment=row[4],
                    work_queue=row[5],
                    related=None if row[6] is None else json.loads(row[6]),
                    duration=row[7],
                )
                for row in conn.execute(QUERIES["flow_run_metric_events"], (after, end))
            ]
            found = fold_run_events(events)
            newest: dict[str, float] = {}
            if found.ended:
                ids = json.dumps(list(found.ended))
                for run_id, task, state, cached, duration, ended in conn.execute(
                    QUERIES["flow_run_metric_tasks"], (ids,)
                ):
                    found.count_task(found.ended[run_id], task, state, bool(cached), duration)
                    newest[run_id] = max(newest.get(run_id, ended), ended)
            marks = sorted(newest.items())
            counts, histograms, task_counts = fold_rows(found)
            conn.executemany(QUERIES["add_flow_run_counts"], counts)
            conn.executemany(QUERIES["add_flow_run_histogram"], histograms)
            conn.executemany(QUERIES["add_task_run_counts"], task_counts)
            conn.executemany(QUERIES["set_task_run_mark"], marks)
            conn.execute(QUERIES["set_flow_run_metric_mark"], (end,))
            return end - after

        # Nothing new (most scrapes): a read, no write lock taken.
        if self._db.read(batch_end)[1] is None:
            return 0
        return self._db.write(fold)

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
        return {
            row[0]: datetime.fromtimestamp(row[1], UTC)
            for row in self._db.fetchall(QUERIES["metric_queue_oldest"], ())
            if row[1] is not None
        }

    def metric_task_counts(self) -> list[TaskRunCountRow]:
        self.fold_run_metrics()
        return [
            TaskRunCountRow(row[0], row[1], row[2], int(row[3]), int(row[4]))
            for row in self._db.fetchall(QUERIES["metric_task_run_counts"], ())
        ]

    def metric_task_replays(self) -> dict[str, int]:
        found = self._db.fetchall(QUERIES["metric_task_replay_counts"], ())
        return {row[0]: int(row[1]) for row in found}

    def metric_event_counts(self, *, batch: int = EVENT_COUNT_BATCH) -> dict[str, int]:
        def new_events(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
            row = conn.execute(QUERIES["event_count_mark"]).fetchone()
            after = 0 if row is None else int(row[0])
            return conn.execute(QUERIES["count_new_events"], (after, batch)).fetchall()

        def totals(conn: sqlite3.Connection) -> dict[str, int]:
            return {row[0]: int(row[1]) for row in conn.execute(QUERIES["metric_event_counts"])}

        def count(conn: sqlite3.Connection) -> dict[str, int]:
            found = new_events(conn)  # again, in the write: another scrape may have counted
            if found:
                conn.executemany(QUERIES["add_event_count"], [(row[0], row[1]) for row in found])
                conn.execute(QUERIES["set_event_count_mark"], (found[0][2],))
            return totals(conn)

        # Nothing new (most scrapes): a read, no write lock taken.
        if not self._db.read(new_events):
            return self._db.read(totals)
        return self._db.write(count)
