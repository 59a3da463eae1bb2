"""Model calls, their usage, prompts and forks on SQLite (see `legato.store.base_llm`)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from legato._llm_records import (
    LLMCallRecord,
    LLMGroup,
    LLMUsageCounter,
    LLMUsageTotal,
    PromptSummary,
    PromptVersion,
)
from legato.errors import RunNotFoundError, RunOwnershipLost
from legato.records import FlowRun
from legato.store.base_llm import (
    PROMPT_PREFIX_LIMIT,
    PROMPT_PREFIX_MIN,
    llm_call_from_row,
    llm_call_params,
    pick_prompt_version,
    prompt_from_row,
    usage_counter_from_row,
    usage_total_from_row,
)
from legato.store.sqlite import rows
from legato.store.sqlite.connection import Database
from legato.store.sqlite.journal import fold_journal
from legato.store.sqlite.sql import QUERIES

_INSERT_LLM_CALL = QUERIES["insert_llm_call"]
_RUN_OWNED = QUERIES["llm_run_owned"]


def _time(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _prompt(row: Sequence[Any]) -> PromptVersion:
    return prompt_from_row(row, _time(row[3]))


def _call(row: Sequence[Any]) -> LLMCallRecord:
    return llm_call_from_row(row, _time(row[7]))


class SQLiteLLM:
    """The model-call part of the store contract."""

    _db: Database

    def _insert_flow_run(
        self, conn: sqlite3.Connection, run: FlowRun, parameters_blob: bytes | None
    ) -> None:  # provided by SQLiteStore
        raise NotImplementedError

    def record_llm_call(self, record: LLMCallRecord, owner_token: str) -> None:
        params = (
            *llm_call_params(record, rows.epoch(record.started)),
            record.flow_run_id,
            owner_token,
        )

        def insert(conn: sqlite3.Connection) -> None:
            if conn.execute(_INSERT_LLM_CALL, params).rowcount:
                return
            # Nothing written: recorded already (kept), or the run is someone else's.
            if conn.execute(_RUN_OWNED, (record.flow_run_id, owner_token)).fetchone() is None:
                raise RunOwnershipLost(record.flow_run_id)

        self._db.write(insert)

    def list_llm_calls(
        self, flow_run_id: str, *, call_key: str | None = None
    ) -> list[LLMCallRecord]:
        if call_key is None:
            found = self._db.fetchall(QUERIES["list_llm_calls"], (flow_run_id,))
        else:
            found = self._db.fetchall(QUERIES["list_llm_call_tries"], (flow_run_id, call_key))
        return [_call(row) for row in found]

    def llm_usage_totals(
        self,
        group_by: LLMGroup,
        *,
        flow_run_ids: Sequence[str] | None = None,
        since: datetime | None = None,
    ) -> list[LLMUsageTotal]:
        group = LLMGroup(group_by).value
        after = None if since is None else rows.epoch(since)
        if flow_run_ids is None:
            found = self._db.fetchall(QUERIES["llm_usage_totals"], (group, after))
        else:
            ids = rows.to_json(list(flow_run_ids), "flow run ids")
            found = self._db.fetchall(QUERIES["llm_usage_totals_of_runs"], (group, ids, after))
        return [usage_total_from_row(row) for row in found]

    def llm_usage_counters(self) -> list[LLMUsageCounter]:
        found = self._db.fetchall(QUERIES["llm_usage_counters"], ())
        return [usage_counter_from_row(row) for row in found]

    def save_prompt(
        self, name: str, template: str, version: str, *, now: datetime
    ) -> PromptVersion:
        def save(conn: sqlite3.Connection) -> PromptVersion:
            conn.execute(QUERIES["insert_prompt"], (name, version, template, rows.epoch(now)))
            return _prompt(conn.execute(QUERIES["get_prompt_version"], (name, version)).fetchone())

        return self._db.write(save)

    def get_prompt(self, name: str, version: str | None = None) -> PromptVersion | None:
        if version is None:
            row = self._db.fetchone(QUERIES["get_newest_prompt"], (name,))
            return None if row is None else _prompt(row)
        if len(version) < PROMPT_PREFIX_MIN:
            row = self._db.fetchone(QUERIES["get_prompt_version"], (name, version))
            return None if row is None else _prompt(row)
        found = self._db.fetchall(
            QUERIES["get_prompt_prefix"], (name, version, version, PROMPT_PREFIX_LIMIT)
        )
        return pick_prompt_version(name, version, [_prompt(row) for row in found])

    def list_prompts(self) -> list[PromptSummary]:
        summaries = []
        for name, versions, latest, created in self._db.fetchall(QUERIES["list_prompts"], ()):
            summaries.append(PromptSummary(name, int(versions), latest, _time(created)))
        return summaries

    def list_prompt_versions(self, name: str) -> list[PromptVersion]:
        found = self._db.fetchall(QUERIES["list_prompt_versions"], (name,))
        return [_prompt(row) for row in found]

    def fork_flow_run(
        self,
        source_run_id: str,
        run: FlowRun,
        parameters_blob: bytes | None,
        call_keys: Sequence[str],
    ) -> None:
        keys = list(dict.fromkeys(call_keys))
        pairs = rows.to_json([[key, os.urandom(16).hex()] for key in keys], "call keys")
        keys_json = rows.to_json(keys, "call keys")

        def fork(conn: sqlite3.Connection) -> None:
            if conn.execute(QUERIES["flow_run_exists"], (source_run_id,)).fetchone() is None:
                raise RunNotFoundError(source_run_id)
            fold_journal(conn)  # the source's task runs recorded last are in the journal
            self._insert_flow_run(conn, run, parameters_blob)
            conn.execute(QUERIES["fork_task_runs"], (pairs, source_run_id, run.id))
            conn.execute(
                QUERIES["fork_llm_calls"], (run.id, source_run_id, source_run_id, keys_json)
            )

        self._db.write(fork)
