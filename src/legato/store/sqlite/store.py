"""The SQLite store: legato's embedded default, one file shared by every local process."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from legato.errors import RunOwnershipLost, StoreError
from legato.records import (
    CachedResult,
    ErrorInfo,
    FlowRun,
    HeartbeatReply,
    LogRecord,
    PauseInfo,
    RunOwner,
    StoredResult,
    TaskCompletion,
    TaskRun,
)
from legato.settings import env_float
from legato.states import StateType
from legato.store.base import Store
from legato.store.notifications import EVENTS_STORED, RUNS_QUEUED
from legato.store.sqlite import rows
from legato.store.sqlite.alerts import SQLiteAlerts
from legato.store.sqlite.artifacts import SQLiteArtifacts
from legato.store.sqlite.automations import SQLiteAutomations
from legato.store.sqlite.connection import DEFAULT_LOCK_TIMEOUT, Database
from legato.store.sqlite.coordination import SQLiteCoordination
from legato.store.sqlite.deployments import SQLiteDeployments
from legato.store.sqlite.events import SQLiteEvents
from legato.store.sqlite.journal import fold_journal as _fold_journal
from legato.store.sqlite.limits import SQLiteLimits
from legato.store.sqlite.llm import SQLiteLLM
from legato.store.sqlite.llm_stream import SQLiteLLMStream
from legato.store.sqlite.metrics import SQLiteMetrics
from legato.store.sqlite.migrate import ensure_schema
from legato.store.sqlite.notifications import SQLiteNotifications
from legato.store.sqlite.retention import SQLiteRetention
from legato.store.sqlite.sql import QUERIES
from legato.store.sqlite.stats import SQLiteRunStats
from legato.store.sqlite.suspend import SQLiteSuspend
from legato.store.sqlite.sweeps import SQLiteSweeps
from legato.store.sqlite.transaction_records import SQLiteTransactionRecords
from legato.store.sqlite.variables import SQLiteVariables
from legato.store.sqlite.webhooks import SQLiteWebhooks

# A crashed run has no process left to stop: cancelling it ends it at once.
_CANCELLED_AT_ONCE = frozenset(
    {StateType.PAUSED, StateType.SCHEDULED, StateType.PENDING, StateType.CRASHED}
)
# Above every character an id can hold, so [prefix, prefix + _TOP) is exactly
# the ids starting with prefix, as a primary-key range.
_TOP = "\U0010ffff"

# Hot-path queries, looked up once.
_JOURNAL_TASK_RUN = QUERIES["journal_task_run"]
_JOURNAL_END = QUERIES["task_run_journal_end"]
# Fold the journal into task_runs after this many appends from this process, so it
# stays small even when nobody reads during a long flow run.
_FOLD_EVERY = 1024
_SET_CACHE_ENTRY = QUERIES["set_cache_entry"]
_INSERT_LOG = QUERIES["insert_log"]
_TASK_RUN_EVENT = QUERIES["record_task_run_event"]
_NOTIFY = QUERIES["notify"]
_GET_FLOW_RUN = QUERIES["get_flow_run"]
_INSERT_FLOW_RUN_TAGS = QUERIES["insert_flow_run_tags"]
_COMPLETED = StateType.COMPLETED
# Task runs in these states write an event, in the transaction that records them.
_EVENT_STATES = frozenset({StateType.FAILED, StateType.CRASHED})


class SQLiteStore(
    SQLiteCoordination,
    SQLiteDeployments,
    SQLiteRetention,
    SQLiteLimits,
    SQLiteVariables,
    SQLiteArtifacts,
    SQLiteEvents,
    SQLiteAutomations,
    SQLiteNotifications,
    SQLiteWebhooks,
    SQLiteAlerts,
    SQLiteSuspend,
    SQLiteSweeps,
    SQLiteMetrics,
    SQLiteTransactionRecords,
    SQLiteRunStats,
    SQLiteLLM,
    SQLiteLLMStream,
    Store,
):
    """A state store in one SQLite file (WAL mode), safe for many threads and processes.

    ``lock_timeout`` bounds how long a call waits for another process's write
    lock before raising `StoreError` (default 60 s, or
    ``LEGATO_SQLITE_LOCK_TIMEOUT``).
    """

    backend = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float | None = None) -> None:
        absolute = os.path.abspath(os.path.expanduser(os.fspath(path)))
        try:
            Path(absolute).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder of the SQLite store {absolute}: {exc}"
            ) from exc
        if lock_timeout is None:
            lock_timeout = env_float("LEGATO_SQLITE_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT)
        self.path = absolute
        self._db = Database(absolute, lock_timeout=lock_timeout)
        try:
            self.migrated: list[int] = ensure_schema(self._db)
        except BaseException:
            self._db.close()
            raise
        self._appended = 0
        # Group commit of task runs recorded by several threads at once.
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        _stores.add(self)

    def _after_fork_in_child(self) -> None:
        # Another thread may have held these at the fork; the child starts clean.
        self._queue = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # --- lifecycle -----------------------------------------------------------

    @property
    def display_url(self) -> str:
        return f"sqlite:///{self.path}"

    def schema_version(self) -> int:
        return int(self._db.fetchone(QUERIES["schema_version"], ())[0] or 0)

    def close(self) -> None:
        self._db.close()

    # --- flow runs -----------------------------------------------------------

    def create_flow_run(self, run: FlowRun, parameters_blob: bytes | None = None) -> None:
        self._db.write(lambda conn: self._insert_flow_run(conn, run, parameters_blob))

    def _insert_flow_run(
        self, conn: sqlite3.Connection, run: FlowRun, parameters_blob: bytes | None
    ) -> None:
        """Insert a new run in the write transaction of ``conn`` (also used by a fork)."""
        params = rows.flow_run_params(run, parameters_blob)
        tag_params = rows.flow_run_tag_params(params)
        queued = run.work_queue is not None and run.state is StateType.SCHEDULED
        try:
            conn.execute(QUERIES["insert_flow_run"], params)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"a flow run with id {run.id} already exists in {self.path}") from exc
        if tag_params is not None:
            conn.execute(_INSERT_FLOW_RUN_TAGS, tag_params)
        if queued:
            conn.execute(QUERIES["notify"], (RUNS_QUEUED, run.work_queue))

    def get_flow_run(self, run_id: str) -> FlowRun | None:
        row = self._db.fetchone(_GET_FLOW_RUN, (run_id,))
        return None if row is None else rows.flow_run_from_row(row)

    def match_run_ids(self, prefix: str, limit: int = 2) -> list[str]:
        if limit <= 0:
            return []
        found = self._db.fetchall(QUERIES["match_run_ids"], (prefix, prefix + _TOP, limit))
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
            range_params.append(rows.epoch(created_after))
        if created_before is not None:
            ranges.append(QUERIES["where_created_before"])
            range_params.append(rows.epoch(created_before))
        if tag is not None and parent_run_id is None:
            # The rows of the tag give the order; the creation range bounds them.
            sql = QUERIES["list_tagged_flow_runs"].replace(
                "{tag_range}", "".join(f"AND {r} " for r in ranges)
            )
            params[:0] = [tag, *range_params]
        else:
            sql = QUERIES["list_flow_runs"]
            if tag is not None:  # the few children of one run, each checked for the tag
                conditions.append(QUERIES["where_child_tag"])
                params.append(tag)
            conditions += ranges
            params += range_params
        # None and an empty sequence both mean "any state". Several states are
        # asked one by one, each walking an index in order, and merged: one
        # IN (...) query would sort every matching run to return the newest few.
        wanted = sorted({StateType(state).value for state in states or ()})
        if wanted:
            conditions.append(QUERIES["where_state"])
        sql = sql.replace("{where}", "WHERE " + " AND ".join(conditions) if conditions else "")
        found: list[Any] = []
        asked: list[str | None] = list(wanted) or [None]
        for state in asked:
            bound = (*params, state, limit) if state is not None else (*params, limit)
            found.extend(self._db.fetchall(sql, bound))
        if len(wanted) > 1:
            # created, then rowid (tag_seq for a tag: the same order)
            found.sort(key=lambda row: (row[5], row[-1]), reverse=True)
            del found[limit:]
        return [rows.flow_run_from_row(row) for row in found]

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
        at = rows.to_epoch(now)
        params: tuple[object, ...] = (
            owner.token,
            owner.host,
            owner.pid,
            owner.pid_started,
            at,
            at,
            run_id,
            rows.states_json(from_states),
        )
        sql = QUERIES["start_flow_run"]
        if expected_owner_token is not None:
            sql = QUERIES["start_claimed_flow_run"]
            params += (expected_owner_token,)

        def start(conn: sqlite3.Connection) -> Any:
            if conn.execute(sql, params).rowcount == 0:
                return None
            return conn.execute(_GET_FLOW_RUN, (run_id,)).fetchone()

        row = self._db.write(start)
        return None if row is None else rows.flow_run_from_row(row)

    def heartbeat_flow_run(self, run_id: str, owner_token: str, now: datetime) -> HeartbeatReply:
        at = rows.to_epoch(now)

        def beat(conn: sqlite3.Connection) -> HeartbeatReply:
            found = conn.execute(QUERIES["heartbeat_flow_run"], (at, run_id, owner_token))
            row = found.fetchone()
            found.fetchall()  # finish the statement before COMMIT
            still_owner = row is not None
            if row is None:
                row = conn.execute(QUERIES["get_cancel_state"], (run_id,)).fetchone()
            # A run cancelled outright (not just flagged) must stop as well.
            stop = row is not None and (bool(row[0]) or row[1] == StateType.CANCELLED.value)
            pause = row is not None and bool(row[2])
            return HeartbeatReply(
                still_owner=still_owner, cancel_requested=stop, pause_requested=pause
            )

        return self._db.write(beat)

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
            rows.to_epoch(now) if state.is_final else None,
            message,
            rows.error_json(error),
            None if result is None else result.serializer,
            None if result is None else result.payload,
            run_id,
            owner_token,
        )
        self._fenced_update(run_id, QUERIES["finish_flow_run"], params, logs, replayed)

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
        params = (rows.pause_json(pause), run_id, owner_token)
        self._fenced_update(run_id, QUERIES["pause_flow_run"], params, logs, replayed)

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
        params = (rows.epoch(scheduled_time), message, run_id, owner_token)
        self._fenced_update(run_id, QUERIES["reschedule_flow_run"], params, logs, replayed)

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
        params = (
            "pending" if wake_at is None else "scheduled",
            None if wake_at is None else rows.epoch(wake_at),
            message,
            rows.error_json(error),
            run_id,
            owner_token,
        )
        self._fenced_update(run_id, QUERIES["retry_flow_run"], params, logs, replayed)

    def _fenced_update(
        self,
        run_id: str,
        sql: str,
        params: tuple[object, ...],
        logs: Sequence[LogRecord],
        replayed: int = 0,
    ) -> None:
        log_rows = [rows.log_params(log) for log in logs]

        def update(conn: sqlite3.Connection) -> None:
            # A run that stops leaves its task runs folded, ready for any reader; folded
            # first, so the task-count trigger of the state change reads task_runs only.
            _fold_journal(conn)
            if conn.execute(sql, params).rowcount == 0:
                raise RunOwnershipLost(run_id)
            if log_rows:
                conn.executemany(_INSERT_LOG, log_rows)
            if replayed > 0:
                conn.execute(QUERIES["add_task_replays"], (replayed, run_id))

        self._db.write(update)
        self._appended = 0

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
        params: tuple[object, ...] = (
            to_state.value,
            rows.to_epoch(now) if to_state.is_final else None,
            message,
            rows.error_json(error),
            run_id,
            rows.states_json(from_states),
        )
        sql = QUERIES["transition_flow_run"]
        if expected_owner_token is not None:
            sql = QUERIES["transition_owned_flow_run"]
            params += (expected_owner_token,)
        return self._db.write(lambda conn: conn.execute(sql, params).rowcount > 0)

    def request_cancellation(self, run_id: str, *, now: datetime) -> StateType | None:
        at = rows.to_epoch(now)

        def cancel(conn: sqlite3.Connection) -> StateType | None:
            row = conn.execute(QUERIES["get_run_state"], (run_id,)).fetchone()
            if row is None:
                return None
            state = rows.state_of(row[0])
            if state is StateType.RUNNING:
                conn.execute(QUERIES["set_cancel_requested"], (run_id,))
            elif state in _CANCELLED_AT_ONCE:
                conn.execute(QUERIES["cancel_flow_run"], (at, run_id))
                state = StateType.CANCELLED
            return state

        return self._db.write(cancel)

    def get_flow_result(self, run_id: str) -> StoredResult | None:
        return rows.stored_result(self._db.fetchone(QUERIES["get_flow_result"], (run_id,)))

    # --- run inputs ----------------------------------------------------------

    def save_run_input(self, run_id: str, key: str, value_json: str | None) -> None:
        params = (run_id, key, value_json)
        self._db.write(lambda conn: conn.execute(QUERIES["save_run_input"], params))

    def get_run_input(self, run_id: str, key: str) -> tuple[bool, str | None]:
        row = self._db.fetchone(QUERIES["get_run_input"], (run_id, key))
        return (False, None) if row is None else (True, row[0])

    # --- task runs -----------------------------------------------------------

    def record_task_run_soon(
        self,
        task_run: TaskRun,
        owner_token: str,
        *,
        result: StoredResult | None = None,
        logs: Sequence[LogRecord] = (),
        committed: Callable[[BaseException | None], None],
    ) -> None:
        # The plain case (what `_group_commit` writes) joins the queue and returns;
        # whoever commits next calls `committed`. Anything else is written now.
        if logs or task_run.state in _EVENT_STATES or _sets_cache_entry(task_run, result):
            super().record_task_run_soon(
                task_run, owner_token, result=result, logs=logs, committed=committed
            )
            return
        try:
            params = rows.task_run_params(task_run, owner_token, result)
        except BaseException as exc:
            committed(exc)
            return
        pending = _Pending(params, task_run.flow_run_id, committed)
        with self._queue_lock:
            self._queue.append(pending)
        self._drain()

    def _drain(self) -> None:
        """Commit what is queued unless someone holds the commit lock ("lock and
        recheck"): every holder looks at the queue again after releasing it, so a
        record queued while the lock was held is never left behind."""
        while self._queue and self._commit_lock.acquire(blocking=False):
            batch: list[_Pending] = []
            try:
                batch = self._take_queue()
                self._write_batch(batch)
            finally:
                self._commit_lock.release()
                _settle(batch)  # even when the fold after the commit failed

    def _take_queue(self) -> list[_Pending]:
        with self._queue_lock:
            batch, self._queue = self._queue, []
        return batch

    def record_task_completion(
        self,
        completion: TaskCompletion,
        owner_token: str,
        *,
        result: StoredResult,
        logs: Sequence[LogRecord] = (),
    ) -> None:
        if logs:  # written in the record's transaction, by the general path
            super().record_task_completion(completion, owner_token, result=result, logs=logs)
            return
        # No cache entry, no log lines, no event: the one journal statement.
        self._group_commit(
            rows.task_completion_params(completion, owner_token, result),
            completion.flow_run_id,
        )

    def record_task_run(
        self,
        task_run: TaskRun,
        owner_token: str,
        *,
        result: StoredResult | None = None,
        logs: Sequence[LogRecord] = (),
    ) -> None:
        if not logs and task_run.cache_key is None and task_run.state not in _EVENT_STATES:
            # The usual record (no cache entry, no log lines, no event): one statement.
            self._group_commit(
                rows.task_run_params(task_run, owner_token, result), task_run.flow_run_id
            )
            return
        params = rows.task_run_params(task_run, owner_token, result)
        cache_params = None
        # A record of a cache hit (cached=True) leaves the entry alone: it keeps
        # pointing at the run that computed the value, with that run's expiry,
        # so hits never extend how long a value stays cached.
        if _sets_cache_entry(task_run, result):
            cache_params = (
                task_run.cache_key,
                task_run.id,
                rows.to_epoch(task_run.cache_expires_at),
                time.time(),
            )
        log_rows = [rows.log_params(log) for log in logs] if logs else None
        with_event = task_run.state in _EVENT_STATES

        if cache_params is None and not log_rows and not with_event:
            self._group_commit(params, task_run.flow_run_id)
            return

        def record(conn: sqlite3.Connection) -> None:
            # The insert is conditional on the owner token (see queries.sql):
            # no row changed means the run belongs to someone else now.
            if conn.execute(_JOURNAL_TASK_RUN, params).rowcount == 0:
                raise RunOwnershipLost(task_run.flow_run_id)
            if with_event:  # built from the journal row just written
                conn.execute(_TASK_RUN_EVENT)
                conn.execute(_NOTIFY, (EVENTS_STORED, ""))
            if cache_params is not None:
                conn.execute(_SET_CACHE_ENTRY, cache_params)
            if log_rows:
                conn.executemany(_INSERT_LOG, log_rows)

        self._db.write(record)
        self._appended += 1
        if self._appended >= _FOLD_EVERY:
            self._fold()

    def _group_commit(self, params: tuple[Any, ...], flow_run_id: str) -> None:
        """Commit one task run together with those other threads are recording.

        Each caller returns only once its own record is committed; a caller that
        finds the commit lock free writes everything queued so far in one
        transaction. With a fan-out on many threads, many task runs share one
        commit; a caller alone (nothing queued, nobody committing: a sequential
        flow) writes its single statement without going through the queue.
        """
        if not self._queue and self._commit_lock.acquire(blocking=False):
            try:
                if self._db.write_one(_JOURNAL_TASK_RUN, params) == 0:
                    raise RunOwnershipLost(flow_run_id)
                self._appended += 1
                if self._appended >= _FOLD_EVERY:
                    self._fold()
            finally:
                self._commit_lock.release()
                if self._queue:  # queued by `record_task_run_soon` meanwhile
                    self._drain()
            return
        pending = _Pending(params, flow_run_id, None)
        with self._queue_lock:
            self._queue.append(pending)
        batch: list[_Pending] = []
        try:
            with self._commit_lock:
                if not pending.done:
                    batch = self._take_queue()
                    self._write_batch(batch)
        finally:
            _settle(batch)  # even when the fold after the commit failed
        if self._queue:
            self._drain()
        if pending.error is not None:
            raise pending.error

    def _write_batch(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                only = batch[0]
                if self._db.write_one(_JOURNAL_TASK_RUN, only.params) == 0:
                    only.error = RunOwnershipLost(only.flow_run_id)
            else:

                def write_all(conn: sqlite3.Connection) -> None:
                    # Every fence holds (the usual case): one statement run over all
                    # the rows, no Python per row while holding the commit lock.
                    params = [item.params for item in batch]
                    if conn.executemany(_JOURNAL_TASK_RUN, params).rowcount != len(batch):
                        raise _FenceFailed  # rolled back; written row by row below

                def write(conn: sqlite3.Connection) -> None:
                    for item in batch:
                        if conn.execute(_JOURNAL_TASK_RUN, item.params).rowcount == 0:
                            item.error = RunOwnershipLost(item.flow_run_id)

                try:
                    self._db.write(write_all)
                except _FenceFailed:
                    self._db.write(write)
        except BaseException as exc:  # each caller gets it, its own record unwritten
            for item in batch:
                item.error = exc
                item.done = True
            return
        for item in batch:
            item.done = True
        self._appended += len(batch)
        if self._appended >= _FOLD_EVERY:
            self._fold()

    # Task runs are appended to a journal and folded into task_runs (see
    # queries.sql): every read of task_runs folds first, so reads always see
    # every committed record.

    def _fold(self) -> None:
        self._appended = 0
        if self._db.fetchone(_JOURNAL_END, ())[0] is None:
            return
        self._db.write(_fold_journal)

    def _fold_if_needed(self) -> None:
        if self._db.fetchone(_JOURNAL_END, ())[0] is not None:
            self._db.write(_fold_journal)

    def get_task_run(self, task_run_id: str) -> TaskRun | None:
        self._fold_if_needed()
        row = self._db.fetchone(QUERIES["get_task_run"], (task_run_id,))
        return None if row is None else rows.task_run_from_row(row)

    def find_task_run(self, flow_run_id: str, call_key: str) -> TaskRun | None:
        self._fold_if_needed()
        row = self._db.fetchone(QUERIES["find_task_run"], (flow_run_id, call_key))
        return None if row is None else rows.task_run_from_row(row)

    def list_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        self._fold_if_needed()
        found = self._db.fetchall(QUERIES["list_task_runs"], (flow_run_id,))
        return [rows.task_run_from_row(row) for row in found]

    def count_task_runs(self, flow_run_id: str) -> dict[StateType, int]:
        self._fold_if_needed()
        found = self._db.fetchall(QUERIES["count_task_runs"], (flow_run_id,))
        return {rows.state_of(state): count for state, count in found}

    def get_task_result(self, task_run_id: str) -> StoredResult | None:
        self._fold_if_needed()
        return rows.stored_result(self._db.fetchone(QUERIES["get_task_result"], (task_run_id,)))

    def mark_rolled_back(self, task_run_ids: Sequence[str], owner_token: str) -> None:
        self._fold_if_needed()
        if not task_run_ids:
            return
        ids = rows.to_json(list(task_run_ids), "task run ids")

        def mark(conn: sqlite3.Connection) -> None:
            for flow_run_id, token in conn.execute(QUERIES["task_run_owners"], (ids,)):
                if token != owner_token:
                    raise RunOwnershipLost(flow_run_id)
            conn.execute(QUERIES["mark_rolled_back"], (ids,))

        self._db.write(mark)

    def get_cached_result(self, cache_key: str, now: datetime) -> CachedResult | None:
        self._fold_if_needed()
        row = self._db.fetchone(QUERIES["get_cached_result"], (cache_key, rows.to_epoch(now)))
        if row is None:
            return None
        return CachedResult(
            cache_key=cache_key,
            task_run_id=row[0],
            result=StoredResult(serializer=row[2], payload=bytes(row[3])),
            expires_at=rows.from_epoch(row[1]),
        )

    # --- logs ----------------------------------------------------------------

    def append_logs(self, logs: Sequence[LogRecord]) -> None:
        if not logs:
            return
        log_rows = [rows.log_params(log) for log in logs]
        self._db.write(lambda conn: conn.executemany(_INSERT_LOG, log_rows))

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


class _FenceFailed(Exception):
    """A batch in which some record's run has another owner now (rolled back)."""


class _Pending:
    """A task run waiting in the group commit queue; ``committed`` (from
    `record_task_run_soon`) is told the outcome, otherwise its caller waits for it."""

    __slots__ = ("committed", "done", "error", "flow_run_id", "params")

    def __init__(
        self,
        params: tuple[Any, ...],
        flow_run_id: str,
        committed: Callable[[BaseException | None], None] | None,
    ) -> None:
        self.params = params
        self.flow_run_id = flow_run_id
        self.committed = committed
        self.done = False
        self.error: BaseException | None = None


def _sets_cache_entry(task_run: TaskRun, result: StoredResult | None) -> bool:
    """Whether recording ``task_run`` points its cache key at it (a computed result;
    a cache hit leaves the entry alone)."""
    return (
        task_run.cache_key is not None
        and result is not None
        and task_run.state is _COMPLETED
        and not task_run.cached
    )


def _settle(batch: list[_Pending]) -> None:
    """Tell the records written without waiting how their commit went (outside the
    commit lock, so the next batch can be written meanwhile)."""
    for item in batch:
        if item.committed is not None:
            item.committed(item.error)


_stores: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for store in list(_stores):
        store._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_after_fork)
