"""Store status and retention (``legato db status`` / ``prune``) on PostgreSQL.

Mixed into `PostgresStore`. A prune batch is one statement (data-modifying
CTEs): atomic, and a live writer waits at most for one batch; runs a writer
holds are passed over (``SKIP LOCKED``) and pruned by a later prune.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from legato.errors import ConfigurationError
from legato.records import PruneResult, StoreStatus
from legato.states import StateType
from legato.store.postgres import rows
from legato.store.postgres.connection import Database
from legato.store.postgres.sql import LATEST_VERSION, QUERIES
from legato.store.retention import COUNTED_TABLES, final_states


class PostgresRetention:
    """Status and retention part of the store contract (see `legato.store.base.Store`)."""

    _db: Database
    migrated: list[int]

    @property
    def display_url(self) -> str:  # provided by PostgresStore
        raise NotImplementedError

    def schema_version(self) -> int:  # provided by PostgresStore
        raise NotImplementedError

    def describe(self) -> StoreStatus:
        row = self._db.fetchone(QUERIES["count_rows"], ())
        counts = {table: int(row[index]) for index, table in enumerate(COUNTED_TABLES)}
        return StoreStatus(
            backend="postgresql",
            url=self.display_url,
            schema_version=self.schema_version(),
            latest_version=LATEST_VERSION,
            size_bytes=int(row[len(COUNTED_TABLES)]),
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
        wanted = rows.state_values(final_states(states))
        limit = None if dry_run else batch_size  # a dry run counts everything at once
        runs = tasks = logs = 0
        while True:
            params = (wanted, finished_before, finished_before, limit, dry_run)
            roots, family, task_count, log_count, _ = self._db.fetchone(
                QUERIES["prune_batch"], params
            )
            runs, tasks, logs = runs + family, tasks + task_count, logs + log_count
            if dry_run or roots < batch_size:
                return PruneResult(flow_runs=runs, task_runs=tasks, logs=logs)
