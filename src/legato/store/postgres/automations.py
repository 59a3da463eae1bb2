"""Automations on PostgreSQL (see `legato.store.base_automations.AutomationOps`).

Mixed into `PostgresStore`. `commit_evaluation` is one transaction whose first
statement compare-and-sets the cursor row: a second evaluator's UPDATE waits for
the first to commit, then finds the cursor moved and writes nothing. A commit
whose reply was lost and is retried finds its own cursor moved likewise: the
evaluator reads again from the stored cursor, so nothing is written twice.
"""

from __future__ import annotations

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
from legato.store.postgres.connection import Connection, Database
from legato.store.postgres.sql import QUERIES


class PostgresAutomations:
    """The automations part of the store contract."""

    _db: Database

    def save_automation(
        self, automation_id: str, name: str, spec: str, *, enabled: bool, now: datetime
    ) -> StoredAutomation:
        at = epoch(now)
        params = (automation_id, name, enabled, spec, at, at)
        return automation_from_row(self._db.fetchone(QUERIES["upsert_automation"], params))

    def get_automation(self, name: str) -> StoredAutomation | None:
        row = self._db.fetchone(QUERIES["get_automation"], (name,))
        return None if row is None else automation_from_row(row)

    def list_automations(self) -> list[StoredAutomation]:
        return [automation_from_row(r) for r in self._db.fetchall(QUERIES["list_automations"], ())]

    def automations_version(self) -> str:
        return str(self._db.fetchall(QUERIES["automations_version"], ())[0][0])

    def set_automation_enabled(self, name: str, enabled: bool, *, now: datetime) -> bool:
        changed = self._db.execute(QUERIES["set_automation_enabled"], (enabled, epoch(now), name))
        return changed > 0 or (self._db.retried and self.get_automation(name) is not None)

    def delete_automation(self, name: str) -> bool:
        def delete(conn: Connection) -> bool:
            with conn.transaction(), conn.cursor() as cur:
                row = cur.execute(QUERIES["get_automation"], (name,)).fetchone()
                if row is None:
                    return False
                cur.execute(QUERIES["delete_automation_actions"], (row[0],))
                cur.execute(QUERIES["delete_automation_firings"], (row[0],))
                cur.execute(QUERIES["delete_automation_buckets"], (row[0], row[0]))
                cur.execute(QUERIES["delete_automation"], (row[0],))
                return True

        return self._db.run(delete)

    def get_evaluator_cursor(self, name: str) -> str | None:
        row = self._db.fetchone(QUERIES["get_evaluator_cursor"], (name,))
        return None if row is None else str(row[0])

    def load_buckets(self, keys: Sequence[tuple[str, str]]) -> list[Bucket]:
        def load(conn: Connection) -> list[Bucket]:
            found = []
            with conn.cursor() as cur:
                for key in keys:
                    row = cur.execute(QUERIES["get_bucket"], key).fetchone()
                    if row is not None:
                        found.append(bucket_from_row(row))
            return found

        return self._db.run(load)

    def list_buckets(self, automation_id: str, *, limit: int = 100) -> list[Bucket]:
        rows = self._db.fetchall(QUERIES["list_buckets"], (automation_id, limit))
        return [bucket_from_row(r) for r in rows]

    def expired_buckets(self, now: datetime, *, limit: int = 1000) -> list[Bucket]:
        rows = self._db.fetchall(QUERIES["expired_buckets"], (epoch(now), limit))
        return [bucket_from_row(r) for r in rows]

    def commit_evaluation(
        self, name: str, expected: str | None, cursor: str, evaluation: Evaluation
    ) -> bool:
        def commit(conn: Connection) -> bool:
            now = epoch(datetime.now(UTC))
            with conn.transaction(), conn.cursor() as cur:
                if expected is None:
                    cur.execute(QUERIES["insert_evaluator_cursor"], (name, cursor, now))
                else:
                    cur.execute(QUERIES["update_evaluator_cursor"], (cursor, now, name, expected))
                if cur.rowcount != 1:
                    return False
                if evaluation.deletes:
                    cur.executemany(QUERIES["delete_bucket"], list(evaluation.deletes))
                if evaluation.upserts:
                    cur.executemany(
                        QUERIES["upsert_bucket"], [bucket_params(b) for b in evaluation.upserts]
                    )
                for firing in evaluation.firings:
                    cur.execute(QUERIES["insert_firing"], firing_params(firing))
                    if firing.actions:
                        cur.executemany(QUERIES["insert_action"], action_params(firing))
                return True

        return self._db.run(commit)

    def list_firings(self, automation_id: str, *, limit: int = 20) -> list[Firing]:
        def load(conn: Connection) -> list[Firing]:
            firings = []
            with conn.cursor() as cur:
                rows = cur.execute(QUERIES["list_firings"], (automation_id, limit)).fetchall()
                for row in rows:
                    actions = cur.execute(QUERIES["firing_actions"], (row[0],)).fetchall()
                    firings.append(firing_from_row(row, actions))
            return firings

        return self._db.run(load)

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
        self._db.execute(QUERIES["finish_action"], params)
