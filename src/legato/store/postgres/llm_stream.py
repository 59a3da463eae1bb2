"""The partial text of streamed model calls on PostgreSQL (see `legato.store.base_llm_stream`)."""

from __future__ import annotations

from datetime import datetime

from legato.store.base import as_utc
from legato.store.base_llm_stream import LLMStreamText
from legato.store.postgres import rows
from legato.store.postgres.connection import Database
from legato.store.postgres.sql import QUERIES


class PostgresLLMStream:
    """The streamed-text part of the store contract."""

    _db: Database

    def write_llm_stream(
        self, flow_run_id: str, call_key: str, text: str, *, now: datetime
    ) -> None:
        # text cannot hold NUL: it is replaced
        params = (flow_run_id, call_key, rows.text(text), as_utc(now))
        self._db.execute(QUERIES["write_llm_stream"], params)

    def end_llm_stream(self, flow_run_id: str, call_key: str) -> None:
        self._db.execute(QUERIES["end_llm_stream"], (flow_run_id, call_key))

    def list_llm_streams(self, flow_run_id: str) -> list[LLMStreamText]:
        found = self._db.fetchall(QUERIES["list_llm_streams"], (flow_run_id,))
        return [LLMStreamText(key, text, updated) for key, text, updated in found]
