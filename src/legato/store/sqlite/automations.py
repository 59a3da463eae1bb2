"""Automations on SQLite (see `legato.store.base_automations.AutomationOps`).

Mixed into `SQLiteStore`. One writer at a time: `commit_evaluation` is one
BEGIN IMMEDIATE transaction whose first statement compare-and-sets the cursor.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from legato._automation_records import ActionRow, Bucket, Evaluation, Firing, StoredAutomation
from legato.store.base_automations import (
    action_from_row,
    action_params,
    automation_from_row,
    bucket_from_row,
    bucket_params,
    epoch,
    firing_from_row,
    firing_params,
)
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


class SQLiteAutomations:
    """The automations part of the store contract."""

    _db: Database

    def save_automation(
        self, automation_id: str, name: str, spec: str, *, enabled: bool, now: datetime
    ) -> StoredAutomation:
        at = epoch(now)
        params = (automation_id, name, int(enabled), spec, at, at)
        row = self._db.write(lambda c: c.execute(QUERIES["upsert_automation"], params).fetchone())
        return automation_from_row(row)

    def get_automation(self, name: str) -> StoredAutomation | None:
        row = self._db.fetchone(QUERIES["get_automation"], (name,))
        return None if row is None else automation_from_row(row)

    def list_automations(self) -> list[StoredAutomation]:
        return [automation_from_row(r) for r in self._db.fetchall(QUERIES["list_automations"], ())]

    def automations_version(self) -> str:
        return str(self._db.fetchall(QUERIES["automations_version"], ())[0][0])

    def set_automation_enabled(self, name: str, enabled: bool, *, now: datetime) -> bool:
        params = (int(enabled), epoch(now), name)
        return self._db.write_one(QUERIES["set_automation_enabled"], params) > 0

    def delete_automation(self, name: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            row = conn.execute(QUERIES["get_automation"], (name,)).fetchone()
            if row is None:
                return False
            conn.execute(QUERIES["delete_automation_actions"], (row[0],))
            conn.execute(QUERIES["delete_automation_firings"], (row[0],))
            conn.execute(QUERIES["delete_automation_buckets"], (row[0], row[0]))
            conn.execute(QUERIES["delete_automation"], (row[0],))
            return True

        return self._db.write(delete)

    def get_evaluator_cursor(self, name: str) -> str | None:
        row = self._db.fetchone(QUERIES["get_evaluator_cursor"], (name,))
        return None if row is None else str(row[0])

    def load_buckets(self, keys: Sequence[tuple[str, str]]) -> list[Bucket]:
        def load(conn: sqlite3.Connection) -> list[Bucket]:
            found = []
            for key in keys:
                row = conn.execute(QUERIES["get_bucket"], key).fetchone()
                if row is not None:
                    found.append(bucket_from_row(row))
            return found

        return self._db.read(load)

    def list_buckets(self, automation_id: str, *, limit: int = 100) -> list[Bucket]:
        rows = self._db.fetchall(QUERIES["list_buckets"], (automation_id, limit))
        return [bucket_from_row(r) for r in rows]

    def expired_buckets(self, now: datetime, *, limit: int = 1000) -> list[Bucket]:
        rows = self._db.fetchall(QUERIES["expired_buckets"], (epoch(now), limit))
        return [bucket_from_row(r) for r in rows]

    def commit_evaluation(
        self, name: str, expected: str | None, cursor: str, evaluation: Evaluation
    ) -> bool:
        def commit(conn: sqlite3.Connection) -> bool:
            now = epoch(datetime.now(UTC))
            if expected is None:
                moved = conn.execute(QUERIES["insert_evaluator_cursor"], (name, cursor, now))
            else:
                moved = conn.execute(
                    QUERIES["update_evaluator_cursor"], (cursor, now, name, expected)
                )
            if moved.rowcount != 1:
                return False
            conn.executemany(QUERIES["delete_bucket"], evaluation.deletes)
            conn.executemany(
                QUERIES["upsert_bucket"], [bucket_params(b) for b in evaluation.upserts]
            )
            for firing in evaluation.firings:
                conn.execute(QUERIES["insert_firing"], firing_params(firing))
                conn.executemany(QUERIES["insert_action"], action_params(firing))
            return True

        return self._db.write(commit)

    def list_firings(self, automation_id: str, *, limit: int = 20) -> list[Firing]:
        def load(conn: sqlite3.Connection) -> list[Firing]:
            rows = conn.execute(QUERIES["list_firings"], (automation_id, limit)).fetchall()
            firings = []
            for row in rows:
                actions = conn.execute(QUERIES["firing_actions"], (row[0],)).fetchall()
                firings.append(firing_from_row(row, actions))
            return firings

        return self._db.read(load)

    def count_firings(self, automation_id: str) -> int:
        return int(self._db.fetchone(QUERIES["count_firings"], (automation_id,))[0])

    def due_actions(self, now: datetime, *, limit: int = 100) -> list[ActionRow]:
        rows = self._db.fetchall(QUERIES["due_actions"], (epoch(now), limit))
        return [action_from_row(r) for r in rows]

    def finish_action(
        self,
        firing_id: str,
        index: int,
        *,
        state: str,
        attempts: int,
        result: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        due = epoch(next_attempt_at or datetime.now(UTC))
        params = (state, attempts, result, due, firing_id, index)
        self._db.write_one(QUERIES["finish_action"], params)
