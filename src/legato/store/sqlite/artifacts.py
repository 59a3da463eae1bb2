"""Artifacts on SQLite: markdown, tables and links that runs publish.

Mixed into `SQLiteStore`. Their data arrives as JSON text and is kept as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from legato.records import Artifact
from legato.store.base import artifact_from_row
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


def _artifact(row: Sequence[Any]) -> Artifact:
    return artifact_from_row(row, datetime.fromtimestamp(row[7], UTC))


class SQLiteArtifacts:
    """The artifacts part of the store contract (see `legato.store.base.Store`)."""

    _db: Database

    def create_artifact(self, artifact: Artifact) -> None:
        params = (
            artifact.id,
            artifact.key,
            artifact.type,
            artifact.data,
            artifact.description,
            artifact.flow_run_id,
            artifact.task_run_id,
            rows.epoch(artifact.created),
        )
        self._db.write_one(QUERIES["insert_artifact"], params)

    def update_artifact(
        self, artifact_id: str, *, type: str, data: str, description: str | None
    ) -> bool:
        params = (data, description, artifact_id, type)
        return self._db.write_one(QUERIES["update_artifact"], params) > 0

    def list_artifacts(
        self, *, key: str | None = None, flow_run_id: str | None = None, limit: int = 100
    ) -> list[Artifact]:
        if flow_run_id is not None:
            found = self._db.fetchall(QUERIES["list_artifacts_by_run"], (flow_run_id, limit))
            artifacts = [_artifact(row) for row in found]
            return artifacts if key is None else [a for a in artifacts if a.key == key]
        if key is not None:
            found = self._db.fetchall(QUERIES["list_artifacts_by_key"], (key, limit))
        else:
            found = self._db.fetchall(QUERIES["list_artifacts"], (limit,))
        return [_artifact(row) for row in found]
