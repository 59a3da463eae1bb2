"""Variables on PostgreSQL: named JSON values shared by flows, tasks and people.

Mixed into `PostgresStore`. Values arrive as JSON text and are kept as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from legato.records import StoredVariable
from legato.store.postgres.connection import Database
from legato.store.postgres.sql import QUERIES


def _variable(row: Sequence[Any]) -> StoredVariable:
    return StoredVariable(
        name=row[0], value=row[1], tags=tuple(row[2]), created=row[3], updated=row[4]
    )


class PostgresVariables:
    """The variables part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def set_variable(
        self,
        name: str,
        value: str,
        *,
        tags: Sequence[str] = (),
        overwrite: bool,
        now: datetime,
    ) -> bool:
        query = QUERIES["upsert_variable" if overwrite else "insert_variable"]
        if self._db.fetchone(query, (name, value, list(tags), now, now)) is not None:
            return True
        if self._db.retried:  # our insert may have committed before its reply was lost
            stored = self.get_variable(name)
            return stored is not None and stored.value == value and stored.created == now
        return False

    def get_variable(self, name: str) -> StoredVariable | None:
        row = self._db.fetchone(QUERIES["get_variable"], (name,))
        return None if row is None else _variable(row)

    def list_variables(self) -> list[StoredVariable]:
        return [_variable(row) for row in self._db.fetchall(QUERIES["list_variables"], ())]

    def delete_variable(self, name: str) -> bool:
        return self._db.execute(QUERIES["delete_variable"], (name,)) > 0
