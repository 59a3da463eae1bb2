"""The PostgreSQL store: one database shared by every process on every machine."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from legato import _clock
from legato.errors import ConfigurationError, RunOwnershipLost, StoreError
from legato.records import (
    CachedResult,
    ErrorInfo,
    FlowRun,
    HeartbeatReply,
    LogRecord,
    PauseInfo,
    RunOwner,
    StoredResult,
    TaskRun,
)
from legato.settings import env_float
from legato.states import StateType
from legato.store.base import Store, as_utc
from legato.store.postgres import rows
from legato.store.postgres.alerts import PostgresAlerts
from legato.store.postgres.artifacts import PostgresArtifacts
from legato.store.postgres.automations import PostgresAutomations
from legato.store.postgres.connection import (
    DEFAULT_POOL_SIZE,
    DEFAULT_TIMEOUT,
    Connection,
    Database,
)
from legato.store.postgres.coordination import PostgresCoordination
from legato.store.postgres.deployments import PostgresDeployments
from legato.store.postgres.events import PostgresEvents
from legato.store.postgres.limits import PostgresLimits
from legato.store.postgres.llm import PostgresLLM
from legato.store.postgres.llm_stream import PostgresLLMStream
from legato.store.postgres.metrics import PostgresMetrics
from legato.store.postgres.migrate import ensure_schema
from legato.store.postgres.notifications import PostgresNotifications
from legato.store.postgres.retention import PostgresRetention
from legato.store.postgres.sql import QUERIES
from legato.store.postgres.stats import PostgresRunStats
from legato.store.postgres.suspend import PostgresSuspend
from legato.store.postgres.sweeps import PostgresSweeps
from legato.store.postgres.transaction_records import PostgresTransactionRecords
from legato.store.postgres.variables import PostgresVariables
from legato.store.postgres.webhooks import PostgresWebhooks

# Hot-path queries, looked up once.
_RECORD_TASK_RUN = QUERIES["record_task_run"]
_RECORD_TASK_RUN_WITH_EXTRAS = QUERIES["record_task_run_with_extras"]
_GET_FLOW_RUN = QUERIES["get_flow_run"]
_COMPLETED = StateType.COMPLETED
_NO_CACHE = (None, None, None)
_MAX_CHAR = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def _prefix_end(prefix: str) -> str | None:
    """The smallest string above every string that starts with ``prefix``.

    Ids compare code point by code point (byte-wise UTF-8 under COLLATE "C"),
    so that is ``prefix`` with its last character incremented, after dropping
    trailing U+10FFFF. None when there is no such string (every string at or
    above ``prefix`` then starts with it).
    """
    for index in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[index])
        if code < _MAX_CHAR:
            code += 1
            if code in _SURROGATES:  # not encodable; the next character is U+E000
                code = _SURROGATES.stop
            return prefix[:index] + chr(code)
    return None


def _encodable(text: str) -> bool:
    """False for text with lone surrogates (from undecodable bytes), which no id holds."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _pool_size() -> int:
    size = env_float("LEGATO_PG_POOL_SIZE", DEFAULT_POOL_SIZE)
    if size != int(size):
        raise ConfigurationError(f"LEGATO_PG_POOL_SIZE={size:g} must be a whole number, e.g. 8")
    return int(size)


class PostgresStore(
    PostgresCoordination,
    PostgresDeployments,
    PostgresRetention,
    PostgresLimits,
    PostgresVariables,
    PostgresArtifacts,
    PostgresEvents,
    PostgresAutomations,
    PostgresNotifications,
    PostgresWebhooks,
    PostgresAlerts,
    PostgresSuspend,
    PostgresSweeps,
    PostgresMetrics,
    PostgresTransactionRecords,
    PostgresRunStats,
    PostgresLLM,
    PostgresLLMStream,
    Store,
):
    """A state store in a PostgreSQL database, safe for many threads, processes and machines.

    ``url`` is a libpq URL, ``postgresql://user:password@host:5432/dbname``
    (query parameters such as ``sslmode`` are passed to libpq). Each process
    keeps a pool of up to ``pool_size`` connections (``LEGATO_PG_POOL_SIZE``,
    default 8); a call waits up to ``timeout`` seconds for one
    (``LEGATO_PG_TIMEOUT``, default 30) before raising `StoreError`.
    """

    backend = "postgresql"

    def __init__(
        self, url: str, *, pool_size: int | None = None, timeout: float | None = None
    ) -> None:
        if pool_size is None:
            pool_size = _pool_size()
        if timeout is None:
            timeout = env_float("LEGATO_PG_TIMEOUT", DEFAULT_TIMEOUT)
        self._db = Database(url, pool_size=pool_size, timeout=timeout)
        self._clock_offset = 0.0  # server clock minus this host's, in seconds
        self._clock_checked = float("-inf")  # monotonic time of the last measure
        #: what opening did to the schema: [] (nothing), or the versions applied
        try:
            self.migrated: list[int] = ensure_schema(self._db)
            # Open the pool now: its first connection is made in the background
            # while the caller gets on with other work.
            self._db.start()
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.display_url!r})"

    # --- lifecycle -----------------------------------------------------------

    @property
    def display_url(self) -> str:
        return self._db.display_url

    def schema_version(self) -> int:
        return int(self._db.fetchone(QUERIES["schema_version"], ())[0] or 0)

    def clock(self) -> datetime:
        """The server's clock, as this host's clock plus the offset measured (half a
        round trip either way) at most every 30 seconds."""
        import time

        now = time.monotonic()
        if now >= self._clock_checked + 30.0:
            before = time.time()
            server = self._db.fetchone("SELECT now()", ())[0]
            after = time.time()
            self._clock_offset = server.timestamp() - (before + after) / 2
            self._clock_checked = now
        return datetime.fromtimestamp(_clock.time() + self._clock_offset, UTC)  # virtual in tests

    def close(self) -> None:
        self._db.close()

    # --- flow runs -----------------------------------------------------------

    def create_flow_run(self, run: FlowRun, parameters_blob: bytes | None = None) -> None:
        query, params = self._flow_run_insert(run, parameters_blob)

        def insert(conn: Connection) -> None:
            try:
                conn.execute(query, params)
            except psycopg.errors.UniqueViolation:
                if self._db.retried:
                    return  # this very insert committed before its reply was lost
                raise StoreError(
                    f"a flow run with id {run.id} already exists in {self.display_url}"
                ) from None

        self._db.run(insert)

    def _flow_run_insert(
        self, run: FlowRun, parameters_blob: bytes | None
    ) -> tuple[str, tuple[Any, ...]]:
        """The statement that inserts a new run, and its parameters (also used by a fork)."""
        params = rows.flow_run_params(run, parameters_blob)
        queued = run.work_queue is not None and run.state is StateType.SCHEDULED
        if run.tags:  # with its rows in flow_run_tags (and the NOTIFY when queued)
            return QUERIES["insert_tagged_flow_run"], params
        return QUERIES["insert_queued_flow_run" if queued else "insert_flow_run"], params

    def get_flow_run(self, run_id: str) -> FlowRun | None:
        row = self._db.fetchone(_GET_FLOW_RUN, (run_id,))
        return None if row is None else rows.flow_run_from_row(row)

    def match_run_ids(self, prefix: str, limit: int = 2) -> list[str]:
        if limit <= 0 or not _encodable(prefix):
            return []
        end = _prefix_end(prefix)
        if end is None:
            found = self._db.fetchall(QUERIES["match_run_ids_unbounded"], (prefix, limit))
        else:
            found = self._db.fetchall(QUERIES["match_run_ids"], (prefix, end, limit))
        return [row[0] for row in found]

    def list_flow_runs(
        self,
        *,
        limit: int = 50,
        states: Sequence[StateType] | None = None,
        flow_name: str | None = None,
        parent_run_id: str | None = None,
        deployment: str | None = None,
        tag: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[FlowRun]:
        if limit <= 0:
            return []
        conditions: list[str] = []
        params: list[object] = []
        if flow_name is not None:
            conditions.append(QUERIES["where_flow_name"])
            params.append(flow_name)
        if parent_run_id is not None:
            conditions.append(QUERIES["where_parent"])
            params.append(parent_run_id)
        if deployment is not None:
            conditions.append(QUERIES["where_deployment"])
            params.append(deployment)
        ranges: list[str] = []
        range_params: list[object] = []
        if created_after is not None:
            ranges.append(QUERIES["where_created_after"])
            range_params.append(as_utc(created_after))
        if created_before is not None:
            ranges.append(QUERIES["where_created_before"])
            range_params.append(as_utc(created_before))
        prefix = ""
        if tag is None:
            conditions += ranges
            params += range_params
        else:
            # The rows of the tag give the order; the creation range bounds them.
            prefix = "tagged_"
            params[:0] = [tag, *range_params]
        # None and an empty sequence both mean "any state".
        wanted = sorted({StateType(state).value for state in states or ()})
        if wanted:
            sql = QUERIES[f"list_{prefix}flow_runs_in_states"].replace(
                "{and_where}", "".join(f" AND {c}" for c in conditions)
            )
            bound: tuple[object, ...] = (wanted, *params, limit, limit)
        else:
            sql = QUERIES[f"list_{prefix}flow_runs"].replace(
                "{where}", "WHERE " + " AND ".join(conditions) if conditions else ""
            )
            bound = (*params, limit)
        sql = sql.replace("{tag_range}", "".join(f"AND {r} " for r in ranges))
        return [rows.flow_run_from_row(row) for row in self._db.fetchall(sql, bound)]

    def get_parameters_blob(self, run_id: str) -> bytes | None:
        row = self._db.fetchone(QUERIES["get_parameters_blob"], (run_id,))
        return None if row is None or row[0] is None else bytes(row[0])

    def find_child_run(self, parent_run_id: str, call_key: str) -> FlowRun | None:
        row = self._db.fetchone(QUERIES["find_child_run"], (parent_run_id, call_key))
        return None if row is None else rows.flow_run_from_row(row)

    def start_flow_run(
        self,
        run_id: str,
        owner: RunOwner,
        *,
        from_states: Iterable[StateType],
        now: datetime,
        expected_owner_token: str | None = None,
    ) -> FlowRun | None:
        params: tuple[object, ...] = (
            owner.token,
            owner.host,
            owner.pid,
            owner.pid_started,
            now,
            now,
            run_id,
            rows.state_values(from_states),
        )
        sql = QUERIES["start_flow_run"]
        if expected_owner_token is not None:
            sql = QUERIES["start_claimed_flow_run"]
            params += (expected_owner_token,)
        row = self._db.fetchone(sql, params)
        if row is None and self._db.retried:
            # The start may have committed before its reply was lost: it is ours then.
            current = self.get_flow_run(run_id)
            holder = current.owner if current is not None else None
            if holder is not None and holder.token == owner.token:
                return current
        return None if row is None else rows.flow_run_from_row(row)

    def heartbeat_flow_run(self, run_id: str, owner_token: str, now: datetime) -> HeartbeatReply:
        row = self._db.fetchone(QUERIES["heartbeat_flow_run"], (now, run_id, owner_token, run_id))
        if row is None:
            return HeartbeatReply(still_owner=False, cancel_requested=False)
        # A run cancelled outright (not just flagged) must stop as well.
        stop = bool(row[1]) or row[2] == StateType.CANCELLED.value
        return HeartbeatReply(
            still_owner=bool(row[0]), cancel_requested=stop, pause_requested=bool(row[3])
        )

    def finish_flow_run(
        self,
        run_id: str,
        owner_token: str,
        *,
        state: StateType,
        now: datetime,
        message: str | None = None,
        error: ErrorInfo | None = None,
        result: StoredResult | None = None,
        logs: Sequence[LogRecord] = (),
        replayed: int = 0,
    ) -> None:
        state = StateType(state)
        params = (
            state.value,
            now if state.is_final else None,
            rows.text(message),
            rows.error_json(error),
            None if result is None else result.serializer,
            None if result is None else result.payload,
            run_id,
            owner_token,
            *(rows.log_arrays(logs) if logs else rows.NO_LOGS),
        )
        if self._attempt_end(QUERIES["finish_flow_run"], params, run_id, replayed) == 0:
            raise RunOwnershipLost(run_id)

    def pause_flow_run(
        self,
        run_id: str,
        owner_token: str,
        pause: PauseInfo,
        *,
        now: datetime,
        logs: Sequence[LogRecord] = (),
        replayed: int = 0,
    ) -> None:
        params = (
            rows.pause_json(pause),
            run_id,
            owner_token,
            *(rows.log_arrays(logs) if logs else rows.NO_LOGS),
        )
        paused = self._attempt_end(QUERIES["pause_flow_run"], params, run_id, replayed) > 0
        if not paused and not self._released_by_retry(run_id, StateType.PAUSED):
            raise RunOwnershipLost(run_id)

    def reschedule_flow_run(
        self,
        run_id: str,
        owner_token: str,
        *,
        scheduled_time: datetime,
        message: str,
        logs: Sequence[LogRecord] = (),
        replayed: int = 0,
    ) -> None:
        params = (
            scheduled_time,
            rows.text(message),
            run_id,
            owner_token,
            *(rows.log_arrays(logs) if logs else rows.NO_LOGS),
        )
        moved = self._attempt_end(QUERIES["reschedule_flow_run"], params, run_id, replayed) > 0
        if not moved and not self._released_by_retry(run_id, StateType.SCHEDULED):
            raise RunOwnershipLost(run_id)

    def retry_flow_run(
        self,
        run_id: str,
        owner_token: str,
        *,
        error: ErrorInfo,
        message: str,
        wake_at: datetime | None = None,
        logs: Sequence[LogRecord] = (),
        replayed: int = 0,
    ) -> None:
        keep = wake_at is None
        params = (
            "pending" if keep else "scheduled",
            wake_at,
            rows.text(message),
            rows.error_json(error),
            *(keep,) * 5,
            run_id,
            owner_token,
            *(rows.log_arrays(logs) if logs else rows.NO_LOGS),
        )
        moved = self._attempt_end(QUERIES["retry_flow_run"], params, run_id, replayed) > 0
        if not moved and (keep or not self._released_by_retry(run_id, StateType.SCHEDULED)):
            raise RunOwnershipLost(run_id)

    def _released_by_retry(self, run_id: str, state: StateType) -> bool:
        """After a retried call that releases the owner: did the first try commit?"""
        if not self._db.retried:
            return False
        current = self.get_flow_run(run_id)
        return current is not None and current.state is state and current.owner is None

    def transition_flow_run(
        self,
        run_id: str,
        *,
        to_state: StateType,
        from_states: Iterable[StateType],
        now: datetime,
        message: str | None = None,
        error: ErrorInfo | None = None,
        expected_owner_token: str | None = None,
    ) -> bool:
        to_state = StateType(to_state)
        params: dict[str, object] = {
            "state": to_state.value,
            "end": now if to_state.is_final else None,
            "message": rows.text(message),
            "error": rows.error_json(error),
            "id": run_id,
            "states": rows.state_values(from_states),
        }
        sql = QUERIES["transition_flow_run"]
        if expected_owner_token is not None:
            sql = QUERIES["transition_owned_flow_run"]
            params["token"] = expected_owner_token
        return self._db.execute(sql, params) > 0

    def request_cancellation(self, run_id: str, *, now: datetime) -> StateType | None:
        row = self._db.fetchone(QUERIES["request_cancellation"], (now, run_id, run_id))
        return None if row is None else rows.state_of(row[0])

    def get_flow_result(self, run_id: str) -> StoredResult | None:
        return rows.stored_result(self._db.fetchone(QUERIES["get_flow_result"], (run_id,)))

    # --- run inputs ----------------------------------------------------------

    def save_run_input(self, run_id: str, key: str, value_json: str | None) -> None:
        self._db.execute(QUERIES["save_run_input"], (run_id, key, value_json))

    def get_run_input(self, run_id: str, key: str) -> tuple[bool, str | None]:
        row = self._db.fetchone(QUERIES["get_run_input"], (run_id, key))
        return (False, None) if row is None else (True, row[0])

    # --- task runs -----------------------------------------------------------

    def record_task_run(
        self,
        task_run: TaskRun,
        owner_token: str,
        *,
        result: StoredResult | None = None,
        logs: Sequence[LogRecord] = (),
    ) -> None:
        params = rows.task_run_params(task_run, owner_token, result)
        # A record of a cache hit (cached=True) leaves the entry alone: it keeps
        # pointing at the run that computed the value, with that run's expiry,
        # so hits never extend how long a value stays cached.
        caches = (
            task_run.cache_key is not None
            and result is not None
            and task_run.state is _COMPLETED
            and not task_run.cached
        )
        if not caches and not logs:
            written = self._db.execute(_RECORD_TASK_RUN, params)
        else:
            extras = (
                (task_run.cache_key, task_run.cache_expires_at, datetime.now(UTC))
                if caches
                else _NO_CACHE
            )
            params += (*extras, *(rows.log_arrays(logs) if logs else rows.NO_LOGS))
            written = self._db.fetchone(_RECORD_TASK_RUN_WITH_EXTRAS, params)[0]
        # The insert is conditional on the owner token (see queries.sql):
        # nothing written means the run belongs to someone else now.
        if written == 0:
            raise RunOwnershipLost(task_run.flow_run_id)

    def get_task_run(self, task_run_id: str) -> TaskRun | None:
        row = self._db.fetchone(QUERIES["get_task_run"], (task_run_id,))
        return None if row is None else rows.task_run_from_row(row)

    def find_task_run(self, flow_run_id: str, call_key: str) -> TaskRun | None:
        row = self._db.fetchone(QUERIES["find_task_run"], (flow_run_id, call_key))
        return None if row is None else rows.task_run_from_row(row)

    def list_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        found = self._db.fetchall(QUERIES["list_task_runs"], (flow_run_id,))
        return [rows.task_run_from_row(row) for row in found]

    def count_task_runs(self, flow_run_id: str) -> dict[StateType, int]:
        found = self._db.fetchall(QUERIES["count_task_runs"], (flow_run_id,))
        return {rows.state_of(state): count for state, count in found}

    def get_task_result(self, task_run_id: str) -> StoredResult | None:
        return rows.stored_result(self._db.fetchone(QUERIES["get_task_result"], (task_run_id,)))

    def mark_rolled_back(self, task_run_ids: Sequence[str], owner_token: str) -> None:
        if not task_run_ids:
            return
        ids = list(task_run_ids)
        lost = self._db.fetchone(QUERIES["mark_rolled_back"], (ids, owner_token, ids))
        if lost is not None:
            raise RunOwnershipLost(lost[0])

    def get_cached_result(self, cache_key: str, now: datetime) -> CachedResult | None:
        row = self._db.fetchone(QUERIES["get_cached_result"], (cache_key, now))
        if row is None:
            return None
        return CachedResult(
            cache_key=cache_key,
            task_run_id=row[0],
            result=StoredResult(serializer=row[2], payload=bytes(row[3])),
            expires_at=row[1],
        )

    # --- logs ----------------------------------------------------------------

    def append_logs(self, logs: Sequence[LogRecord]) -> None:
        if not logs:
            return
        self._db.execute(QUERIES["append_logs"], rows.log_arrays(logs))

    def read_logs(
        self,
        flow_run_id: str,
        *,
        after_id: int = 0,
        limit: int = 1000,
        task_run_id: str | None = None,
    ) -> list[LogRecord]:
        if limit <= 0:
            return []
        if task_run_id is None:
            found = self._db.fetchall(QUERIES["read_logs"], (flow_run_id, after_id, limit))
        else:
            found = self._db.fetchall(
                QUERIES["read_task_logs"], (flow_run_id, after_id, task_run_id, limit)
            )
        return [rows.log_from_row(row) for row in found]
