"""Keyed transaction records on SQLite: one row per committed transaction key.

Mixed into `SQLiteStore`. The payload is the engine's; the store keeps its bytes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from legato.records import TransactionRecord
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


class SQLiteTransactionRecords:
    """The keyed transactions part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def save_transaction_records(self, records: Sequence[TransactionRecord]) -> None:
        query = QUERIES["insert_transaction_record"]
        params = [(r.key, r.flow_run_id, rows.epoch(r.committed_at), r.payload) for r in records]

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(query, params)

        if params:
            self._db.write(insert)

    def get_transaction_record(self, key: str) -> TransactionRecord | None:
        row = self._db.fetchone(QUERIES["get_transaction_record"], (key,))
        if row is None:
            return None
        return TransactionRecord(row[0], row[1], datetime.fromtimestamp(row[2], UTC), row[3])

    def delete_transaction_record(self, key: str) -> bool:
        return self._db.write_one(QUERIES["delete_transaction_record"], (key,)) > 0
