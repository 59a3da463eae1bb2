"""Store status and retention (``legato db status`` / ``prune``) on SQLite.

Mixed into `SQLiteStore`. A prune works in batches of top-level runs, each in
one BEGIN IMMEDIATE transaction: a live writer waits for at most one batch.
The runs of a batch and every subflow run below them are listed in a
temporary table, and everything that belongs to them is deleted through it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime

from legato.errors import ConfigurationError
from legato.records import PruneResult, StoreStatus
from legato.states import StateType
from legato.store.retention import COUNTED_TABLES, final_states
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.journal import fold_journal
from legato.store.sqlite.sql import LATEST_VERSION, QUERIES

_PRUNE_DELETE = [s.strip() for s in QUERIES["prune_delete"].split(";") if s.strip()]


class SQLiteRetention:
    """Status and retention part of the store contract (see `legato.store.base.Store`)."""

    _db: Database
    path: str
    migrated: list[int]

    @property
    def display_url(self) -> str:  # provided by SQLiteStore
        raise NotImplementedError

    def schema_version(self) -> int:  # provided by SQLiteStore
        raise NotImplementedError

    def describe(self) -> StoreStatus:
        def count(conn: sqlite3.Connection) -> dict[str, int]:
            fold_journal(conn)  # journaled task runs count as task runs
            return {
                table: int(conn.execute(QUERIES["count_rows"].format(table=table)).fetchone()[0])
                for table in COUNTED_TABLES
            }

        counts = self._db.write(count)
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return StoreStatus(
            backend="sqlite",
            url=self.display_url,
            schema_version=self.schema_version(),
            latest_version=LATEST_VERSION,
            size_bytes=size,
            row_counts=counts,
            migrated_on_open=tuple(self.migrated),
        )

    def prune_flow_runs(
        self,
        *,
        finished_before: datetime,
        states: Sequence[StateType],
        batch_size: int = 200,
        dry_run: bool = False,
    ) -> PruneResult:
        if batch_size < 1:
            raise ConfigurationError(f"prune batch size {batch_size} must be at least 1")
        wanted = rows.states_json(final_states(states))
        cutoff = rows.epoch(finished_before)
        totals = [0, 0, 0]

        def batch(conn: sqlite3.Connection) -> int:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS prune_ids (id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM prune_ids")
            fold_journal(conn)
            limit = -1 if dry_run else batch_size  # a dry run counts everything at once
            roots = conn.execute(QUERIES["prune_roots"], (wanted, cutoff, cutoff, limit))
            ids = [row[0] for row in roots.fetchall()]
            if not ids:
                return 0
            conn.execute(QUERIES["prune_family"], (rows.to_json(ids, "run ids"),))
            counted = conn.execute(QUERIES["prune_count"]).fetchone()
            for index in range(3):
                totals[index] += int(counted[index])
            if dry_run:
                conn.execute("DELETE FROM prune_ids")
            else:
                for statement in _PRUNE_DELETE:
                    conn.execute(statement)
            return len(ids)

        while True:
            done = self._db.write(batch)
            if dry_run or done < batch_size:
                break
            time.sleep(0)  # let a waiting writer in between batches
        return PruneResult(flow_runs=totals[0], task_runs=totals[1], logs=totals[2])
