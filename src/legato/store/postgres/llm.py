"""Model calls, their usage, prompts and forks on PostgreSQL (see `legato.store.base_llm`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from legato._llm_records import (
    LLMCallRecord,
    LLMGroup,
    LLMUsageCounter,
    LLMUsageTotal,
    PromptSummary,
    PromptVersion,
)
from legato.errors import RunNotFoundError, RunOwnershipLost, StoreError
from legato.records import FlowRun
from legato.store.base import as_utc
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
from legato.store.postgres import rows
from legato.store.postgres.connection import Database, PooledConnection
from legato.store.postgres.sql import QUERIES

_INSERT_LLM_CALL = QUERIES["insert_llm_call"]


def _text(value: str | None) -> str | None:
    return rows.text(value)


class PostgresLLM:
    """The model-call part of the store contract."""

    _db: Database

    @property
    def display_url(self) -> str:  # provided by PostgresStore
        raise NotImplementedError

    def _flow_run_insert(
        self, run: FlowRun, parameters_blob: bytes | None
    ) -> tuple[str, tuple[Any, ...]]:  # provided by PostgresStore
        raise NotImplementedError

    def record_llm_call(self, record: LLMCallRecord, owner_token: str) -> None:
        columns = llm_call_params(record, as_utc(record.started))
        # text cannot hold NUL: the JSON and text columns get it replaced
        params = (
            record.flow_run_id,
            owner_token,
            *(_text(value) if isinstance(value, str) else value for value in columns),
        )
        if self._db.fetchone(_INSERT_LLM_CALL, params)[0] == 0:
            raise RunOwnershipLost(record.flow_run_id)

    def list_llm_calls(
        self, flow_run_id: str, *, call_key: str | None = None
    ) -> list[LLMCallRecord]:
        if call_key is None:
            found = self._db.fetchall(QUERIES["list_llm_calls"], (flow_run_id,))
        else:
            found = self._db.fetchall(QUERIES["list_llm_call_tries"], (flow_run_id, call_key))
        return [llm_call_from_row(row, row[7]) for row in found]

    def llm_usage_totals(
        self,
        group_by: LLMGroup,
        *,
        flow_run_ids: Sequence[str] | None = None,
        since: datetime | None = None,
    ) -> list[LLMUsageTotal]:
        group = LLMGroup(group_by).value
        after = None if since is None else as_utc(since)
        if flow_run_ids is None:
            found = self._db.fetchall(QUERIES["llm_usage_totals"], (group, after))
        else:
            ids = sorted(set(flow_run_ids))
            found = self._db.fetchall(QUERIES["llm_usage_totals_of_runs"], (group, ids, after))
        return [usage_total_from_row(row) for row in found]

    def llm_usage_counters(self) -> list[LLMUsageCounter]:
        found = self._db.fetchall(QUERIES["llm_usage_counters"], ())
        return [usage_counter_from_row(row) for row in found]

    def save_prompt(
        self, name: str, template: str, version: str, *, now: datetime
    ) -> PromptVersion:
        self._db.execute(QUERIES["insert_prompt"], (name, version, _text(template), as_utc(now)))
        row = self._db.fetchone(QUERIES["get_prompt_version"], (name, version))
        if row is None:
            raise StoreError(
                f"prompt '{name}' version {version} was not found right after it was saved in "
                f"{self.display_url}; check whether something deletes from the prompts table"
            )
        return prompt_from_row(row, row[3])

    def get_prompt(self, name: str, version: str | None = None) -> PromptVersion | None:
        if version is None:
            row = self._db.fetchone(QUERIES["get_newest_prompt"], (name,))
            return None if row is None else prompt_from_row(row, row[3])
        if len(version) < PROMPT_PREFIX_MIN:
            row = self._db.fetchone(QUERIES["get_prompt_version"], (name, version))
            return None if row is None else prompt_from_row(row, row[3])
        found = self._db.fetchall(
            QUERIES["get_prompt_prefix"], (name, version, version, PROMPT_PREFIX_LIMIT)
        )
        return pick_prompt_version(name, version, [prompt_from_row(row, row[3]) for row in found])

    def list_prompts(self) -> list[PromptSummary]:
        return [
            PromptSummary(name, int(versions), latest, created)
            for name, versions, latest, created in self._db.fetchall(QUERIES["list_prompts"], ())
        ]

    def list_prompt_versions(self, name: str) -> list[PromptVersion]:
        found = self._db.fetchall(QUERIES["list_prompt_versions"], (name,))
        return [prompt_from_row(row, row[3]) for row in found]

    def fork_flow_run(
        self,
        source_run_id: str,
        run: FlowRun,
        parameters_blob: bytes | None,
        call_keys: Sequence[str],
    ) -> None:
        keys = list(dict.fromkeys(call_keys))
        new_ids = [os.urandom(16).hex() for _ in keys]
        insert_run, run_params = self._flow_run_insert(run, parameters_blob)

        def fork(conn: PooledConnection) -> None:
            try:
                with conn.transaction(), conn.cursor() as cursor:
                    found = cursor.execute(QUERIES["flow_run_exists"], (source_run_id,))
                    if found.fetchone() is None:
                        raise RunNotFoundError(source_run_id)
                    cursor.execute(insert_run, run_params)
                    cursor.execute(
                        QUERIES["fork_task_runs"], (keys, new_ids, source_run_id, run.id)
                    )
                    cursor.execute(
                        QUERIES["fork_llm_calls"], (run.id, source_run_id, source_run_id, keys)
                    )
            except psycopg.errors.UniqueViolation:
                if self._db.retried:
                    return  # this very fork committed before its reply was lost
                raise StoreError(
                    f"a flow run with id {run.id} already exists in {self.display_url}"
                ) from None

        self._db.run(fork)
