"""The partial text of streamed model calls on SQLite (see `legato.store.base_llm_stream`)."""

from __future__ import annotations

from datetime import UTC, datetime

from legato.store.base_llm_stream import LLMStreamText
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.sql import QUERIES


class SQLiteLLMStream:
    """The streamed-text part of the store contract."""

    _db: Database

    def write_llm_stream(
        self, flow_run_id: str, call_key: str, text: str, *, now: datetime
    ) -> None:
        params = (flow_run_id, call_key, text, rows.epoch(now))
        self._db.write_one(QUERIES["write_llm_stream"], params)

    def end_llm_stream(self, flow_run_id: str, call_key: str) -> None:
        self._db.write_one(QUERIES["end_llm_stream"], (flow_run_id, call_key))

    def list_llm_streams(self, flow_run_id: str) -> list[LLMStreamText]:
        found = self._db.fetchall(QUERIES["list_llm_streams"], (flow_run_id,))
        return [
            LLMStreamText(key, text, datetime.fromtimestamp(updated, UTC))
            for key, text, updated in found
        ]
