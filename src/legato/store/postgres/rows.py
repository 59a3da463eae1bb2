"""Conversions between PostgreSQL rows and legato records.

psycopg does the type work: datetimes go out and come back as timestamptz
(microseconds, returned in UTC because every connection sets its TimeZone to
UTC), json/jsonb come back decoded, bytea as bytes. What is left here is
encoding JSON documents ourselves (one compact encoder, cheaper than
psycopg's wrappers) and two things PostgreSQL refuses that SQLite takes:

- NUL characters: ``text`` cannot hold U+0000 and ``jsonb`` refuses the
  ``\\u0000`` escape. Messages and error texts written by user code may
  contain one (a task printing binary data), and a store that fails the run
  for it would be worse than one that shows U+FFFD instead.
- NaN and infinities: not JSON at all, and the server checks. They become
  the strings "NaN", "Infinity", "-Infinity" in the JSON view.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from legato.errors import StoreError
from legato.records import (
    AttemptInfo,
    Dependency,
    ErrorInfo,
    FlowRun,
    LogRecord,
    PauseInfo,
    RunOwner,
    StoredResult,
    TaskRun,
)
from legato.states import StateType
from legato.store.base import queued_due_time

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_STATES: dict[str, StateType] = {state.value: state for state in StateType}
# A \u0000 escape that is not itself escaped (preceded by an even number of backslashes).
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_REPLACEMENT = "\ufffd"


def state_of(value: str) -> StateType:
    try:
        return _STATES[value]
    except KeyError:
        raise StoreError(
            f"the store holds an unknown state {value!r}; it was written by a newer "
            f"legato, upgrade legato to read it"
        ) from None


def state_values(states: Iterable[StateType]) -> list[str]:
    return [StateType(s).value for s in states]


def text(value: str | None) -> str | None:
    """``value`` with NUL characters (which ``text`` cannot hold) replaced."""
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", _REPLACEMENT)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def to_json(value: Any, what: str) -> str:
    """Compact JSON text for a ``json`` column (which keeps NUL escapes as written)."""
    try:
        encoded = _encode(value)
    except ValueError:
        try:
            encoded = _encode(_finite(value))
        except (TypeError, ValueError) as exc:
            raise StoreError(f"{what} cannot be stored as JSON: {exc}") from exc
    except TypeError as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from exc
    return encoded


def to_jsonb(value: Any, what: str) -> str:
    """Compact JSON text for a ``jsonb`` column, which refuses the NUL escape."""
    encoded = to_json(value, what)
    if "\\u0000" in encoded:
        encoded = _JSON_NUL.sub(r"\1\\ufffd", encoded)
    return encoded


def error_json(error: ErrorInfo | None) -> str | None:
    return None if error is None else to_jsonb(error.to_dict(), "the error")


def error_from(data: dict[str, Any] | None) -> ErrorInfo | None:
    return None if data is None else ErrorInfo.from_dict(data)


def pause_json(pause: PauseInfo | None) -> str | None:
    if pause is None:
        return None
    timeout_at = pause.timeout_at
    if timeout_at is not None and timeout_at.tzinfo is None:
        timeout_at = timeout_at.replace(tzinfo=UTC)  # records are UTC; naive means UTC
    return to_json(
        {
            "key": pause.key,
            "input_model": pause.input_model,
            "input_schema": pause.input_schema,
            "timeout_at": None if timeout_at is None else timeout_at.isoformat(),
        },
        f"the input schema of pause point '{pause.key}'",
    )


def pause_from(data: dict[str, Any] | None) -> PauseInfo | None:
    if data is None:
        return None
    timeout_at = data.get("timeout_at")
    return PauseInfo(
        key=data["key"],
        input_model=data.get("input_model"),
        input_schema=data.get("input_schema"),
        timeout_at=None if timeout_at is None else datetime.fromisoformat(timeout_at),
    )


# --- flow runs -------------------------------------------------------------------


def flow_run_params(run: FlowRun, parameters_blob: bytes | None) -> tuple[Any, ...]:
    """Parameters of the insert_flow_run query."""
    owner = run.owner
    return (
        run.id,
        StateType(run.state).value,
        owner.token if owner else None,
        run.flow_name,
        run.name,
        run.created,
        run.start_time,
        run.end_time,
        run.heartbeat_at,
        run.attempts,
        run.cancel_requested,
        run.parent_run_id,
        run.parent_call_key,
        run.entrypoint,
        run.flow_version,
        owner.host if owner else None,
        owner.pid if owner else None,
        owner.pid_started if owner else None,
        run.result_serializer,
        text(run.state_message),
        to_jsonb(list(run.tags), "the tags") if run.tags else None,
        to_json(run.parameters, f"the parameters of flow run {run.id}"),
        error_json(run.error),
        pause_json(run.pause),
        parameters_blob,
        run.work_queue,
        run.priority,
        queued_due_time(run),
        run.deployment,
        run.idempotency_key,
        run.concurrency_key,
        run.concurrency_limit,
        run.trace_context,
    )


def flow_run_from_row(row: Sequence[Any]) -> FlowRun:
    """A FlowRun from the columns of the flow_run_columns fragment."""
    token = row[2]
    tags, error, pause = row[20], row[22], row[23]
    return FlowRun(
        id=row[0],
        state=_STATES.get(row[1]) or state_of(row[1]),
        owner=None
        if token is None
        else RunOwner(token=token, host=row[15], pid=row[16], pid_started=row[17]),
        flow_name=row[3],
        name=row[4],
        created=row[5],
        start_time=row[6],
        end_time=row[7],
        heartbeat_at=row[8],
        attempts=row[9],
        cancel_requested=row[10],
        parent_run_id=row[11],
        parent_call_key=row[12],
        entrypoint=row[13],
        flow_version=row[14],
        result_serializer=row[18],
        state_message=row[19],
        tags=() if tags is None else tuple(tags),
        parameters=row[21],
        error=None if error is None else error_from(error),
        pause=None if pause is None else pause_from(pause),
        has_result=row[24],
        work_queue=row[25],
        priority=row[26],
        scheduled_time=row[27],
        deployment=row[28],
        idempotency_key=row[29],
        concurrency_key=row[30],
        concurrency_limit=row[31],
        retries_used=row[32],
        trace_context=row[33],
    )


# --- task runs -------------------------------------------------------------------


def task_run_params(
    task_run: TaskRun, owner_token: str, result: StoredResult | None
) -> tuple[Any, ...]:
    """Parameters of the task_run_insert fragment (columns, then the fence)."""
    start = task_run.start_time
    deps = task_run.dependencies
    inputs = task_run.inputs
    error = task_run.error
    attempt_log = task_run.attempt_log
    return (
        task_run.id,
        task_run.call_key,
        task_run.task_name,
        task_run.name,
        task_run.state.value,
        task_run.attempts,
        task_run.cached,
        task_run.rolled_back,
        start,  # first_start; kept from the first record by the upsert
        start,
        task_run.end_time,
        task_run.parent_task_run_id,
        task_run.cache_key,
        task_run.cache_expires_at,
        result.serializer if result is not None else task_run.result_serializer,
        to_jsonb(list(task_run.tags), "the tags") if task_run.tags else None,
        to_jsonb([d.to_dict() for d in deps], "the dependencies") if deps else None,
        None if inputs is None else to_json(inputs, f"the inputs of task run {task_run.id}"),
        None if error is None else to_jsonb(error.to_dict(), "the error"),
        None if result is None else result.payload,
        to_jsonb([a.to_dict() for a in attempt_log], "the attempts") if attempt_log else None,
        task_run.args_fingerprint,
        task_run.host,
        task_run.flow_run_id,
        owner_token,
    )


def task_run_from_row(row: Sequence[Any]) -> TaskRun:
    """A TaskRun from the columns of the task_run_columns fragment."""
    tags, deps, error = row[15], row[16], row[18]
    return TaskRun(
        id=row[0],
        flow_run_id=row[1],
        call_key=row[2],
        task_name=row[3],
        name=row[4],
        state=_STATES.get(row[5]) or state_of(row[5]),
        attempts=row[6],
        cached=row[7],
        rolled_back=row[8],
        start_time=row[9],
        end_time=row[10],
        parent_task_run_id=row[11],
        cache_key=row[12],
        cache_expires_at=row[13],
        result_serializer=row[14],
        tags=() if tags is None else tuple(tags),
        dependencies=() if deps is None else tuple(Dependency.from_dict(d) for d in deps),
        inputs=row[17],
        error=None if error is None else error_from(error),
        has_result=row[19],
        attempt_log=() if row[20] is None else tuple(AttemptInfo.from_dict(a) for a in row[20]),
        args_fingerprint=row[21],
        host=row[22],
    )


def stored_result(row: Sequence[Any] | None) -> StoredResult | None:
    """A StoredResult from (serializer, payload), or None when nothing was stored."""
    if row is None or row[1] is None:
        return None
    return StoredResult(serializer=row[0], payload=bytes(row[1]))


# --- logs ------------------------------------------------------------------------


def log_arrays(logs: Sequence[LogRecord]) -> tuple[list[Any], ...]:
    """The eight arrays of the log_rows fragment: one statement inserts them all."""
    return (
        [log.flow_run_id for log in logs],
        [log.task_run_id for log in logs],
        [log.timestamp for log in logs],
        [log.level for log in logs],
        [log.logger for log in logs],
        [text(log.message) for log in logs],
        [log.trace_id for log in logs],
        [log.span_id for log in logs],
    )


NO_LOGS: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [])


def log_from_row(row: Sequence[Any]) -> LogRecord:
    return LogRecord(
        id=row[0],
        flow_run_id=row[1],
        task_run_id=row[2],
        timestamp=row[3],
        level=row[4],
        logger=row[5],
        message=row[6],
        trace_id=row[7],
        span_id=row[8],
    )
