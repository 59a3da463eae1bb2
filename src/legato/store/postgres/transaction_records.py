"""Keyed transaction records on PostgreSQL: one row per committed transaction key.

Mixed into `PostgresStore`. The payload is the engine's; the store keeps its bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from legato.records import TransactionRecord
from legato.store.postgres.connection import Connection, Database
from legato.store.postgres.sql import QUERIES


class PostgresTransactionRecords:
    """The keyed transactions part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def save_transaction_records(self, records: Sequence[TransactionRecord]) -> None:
        query = QUERIES["insert_transaction_record"]
        params = [(r.key, r.flow_run_id, r.committed_at, r.payload) for r in records]
        if not params:
            return

        def insert(conn: Connection) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(query, params)

        self._db.run(insert)

    def get_transaction_record(self, key: str) -> TransactionRecord | None:
        row = self._db.fetchone(QUERIES["get_transaction_record"], (key,))
        if row is None:
            return None
        return TransactionRecord(row[0], row[1], row[2], bytes(row[3]))

    def delete_transaction_record(self, key: str) -> bool:
        return self._db.execute(QUERIES["delete_transaction_record"], (key,)) > 0
