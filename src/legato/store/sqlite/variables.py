"""Variables on SQLite: named JSON values shared by flows, tasks and people.

Mixed into `SQLiteStore`. Values arrive as JSON text and are kept as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from legato.records import StoredVariable
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


def _variable(row: Sequence[Any]) -> StoredVariable:
    return StoredVariable(
        name=row[0],
        value=row[1],
        tags=tuple(json.loads(row[2])),
        created=datetime.fromtimestamp(row[3], UTC),
        updated=datetime.fromtimestamp(row[4], UTC),
    )


class SQLiteVariables:
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
        at = rows.epoch(now)
        params = (name, value, json.dumps(list(tags)), at, at)
        query = QUERIES["upsert_variable" if overwrite else "insert_variable"]
        row = self._db.write(lambda conn: conn.execute(query, params).fetchone())
        return row is not None

    def get_variable(self, name: str) -> StoredVariable | None:
        row = self._db.fetchone(QUERIES["get_variable"], (name,))
        return None if row is None else _variable(row)

    def list_variables(self) -> list[StoredVariable]:
        return [_variable(row) for row in self._db.fetchall(QUERIES["list_variables"], ())]

    def delete_variable(self, name: str) -> bool:
        return self._db.write_one(QUERIES["delete_variable"], (name,)) > 0
