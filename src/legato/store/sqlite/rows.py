"""Conversions between SQLite rows and legato records.

Times are stored as REAL seconds since the epoch: a double keeps sub-microsecond
precision for current dates, so a datetime comes back equal to the one written
(as a timezone-aware UTC datetime). JSON fields are compact TEXT; empty tags
and dependencies are stored as NULL to keep the hot path free of JSON work.
"""

from __future__ import annotations

import json
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
    TaskCompletion,
    TaskRun,
)
from legato.states import StateType
from legato.store.base import queued_due_time

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_decode = json.loads
_STATES: dict[str, StateType] = {state.value: state for state in StateType}
# A state's plain str (an enum's `.value` is a descriptor call; the row binds a str).
_STATE_VALUES: dict[StateType, str] = {state: state.value for state in StateType}
_COMPLETED = StateType.COMPLETED.value
_fromtimestamp = datetime.fromtimestamp


def to_epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        # The records promise UTC; a naive value is taken as UTC rather than
        # as local time (which is what datetime.timestamp() would assume).
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def epoch(value: datetime) -> float:
    """`to_epoch` for a value that is never None."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else _fromtimestamp(value, UTC)


def state_of(value: str) -> StateType:
    try:
        return _STATES[value]
    except KeyError:
        raise StoreError(
            f"the store holds an unknown state {value!r}; it was written by a newer "
            f"legato, upgrade legato to read it"
        ) from None


def states_json(states: Iterable[StateType]) -> str:
    return _encode([StateType(s).value for s in states])


def to_json(value: Any, what: str) -> str:
    try:
        return _encode(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from exc


def error_json(error: ErrorInfo | None) -> str | None:
    return None if error is None else _encode(error.to_dict())


def error_from(text: str | None) -> ErrorInfo | None:
    return None if text is None else ErrorInfo.from_dict(_decode(text))


def tags_json(tags: Sequence[str]) -> str | None:
    return _encode(list(tags)) if tags else None


def tags_from(text: str | None) -> tuple[str, ...]:
    return tuple(_decode(text)) if text is not None else ()


def pause_json(pause: PauseInfo | None) -> str | None:
    if pause is None:
        return None
    return to_json(
        {
            "key": pause.key,
            "input_model": pause.input_model,
            "input_schema": pause.input_schema,
            "timeout_at": to_epoch(pause.timeout_at),
        },
        f"the input schema of pause point '{pause.key}'",
    )


def pause_from(text: str | None) -> PauseInfo | None:
    if text is None:
        return None
    data = _decode(text)
    return PauseInfo(
        key=data["key"],
        input_model=data.get("input_model"),
        input_schema=data.get("input_schema"),
        timeout_at=from_epoch(data.get("timeout_at")),
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
        to_epoch(run.created),
        to_epoch(run.start_time),
        to_epoch(run.end_time),
        to_epoch(run.heartbeat_at),
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
        run.state_message,
        tags_json(run.tags),
        to_json(run.parameters, f"the parameters of flow run {run.id}"),
        error_json(run.error),
        pause_json(run.pause),
        parameters_blob,
        run.work_queue,
        run.priority,
        to_epoch(queued_due_time(run)),
        run.deployment,
        run.idempotency_key,
        run.concurrency_key,
        run.concurrency_limit,
        run.trace_context,
    )


def flow_run_tag_params(params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Parameters of the insert_flow_run_tags query for the insert_flow_run
    ``params`` of a run, or None for a run without tags (nothing to insert)."""
    tags = params[20]
    return None if tags is None else (params[5], params[0], tags)


def flow_run_from_row(row: Sequence[Any]) -> FlowRun:
    """A FlowRun from the columns of the flow_run_columns fragment."""
    # Inlined conversions: this runs for every run read, lists included.
    token = row[2]
    state = _STATES.get(row[1]) or state_of(row[1])
    start, end, heartbeat, tags, parameters = row[6], row[7], row[8], row[20], row[21]
    error, pause = row[22], row[23]
    return FlowRun(
        id=row[0],
        state=state,
        owner=None
        if token is None
        else RunOwner(token=token, host=row[15], pid=row[16], pid_started=row[17]),
        flow_name=row[3],
        name=row[4],
        created=_fromtimestamp(row[5], UTC),
        start_time=None if start is None else _fromtimestamp(start, UTC),
        end_time=None if end is None else _fromtimestamp(end, UTC),
        heartbeat_at=None if heartbeat is None else _fromtimestamp(heartbeat, UTC),
        attempts=row[9],
        cancel_requested=bool(row[10]),
        parent_run_id=row[11],
        parent_call_key=row[12],
        entrypoint=row[13],
        flow_version=row[14],
        result_serializer=row[18],
        state_message=row[19],
        tags=() if tags is None else tuple(_decode(tags)),
        parameters={} if parameters == "{}" else _decode(parameters),
        error=None if error is None else error_from(error),
        pause=None if pause is None else pause_from(pause),
        has_result=bool(row[24]),
        work_queue=row[25],
        priority=row[26],
        scheduled_time=None if row[27] is None else _fromtimestamp(row[27], UTC),
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
    """Parameters of the record_task_run query (columns, then the fence)."""
    start = task_run.start_time
    # The engine's clock gives aware datetimes: `timestamp()` directly, `to_epoch` else.
    start_epoch = (
        None if start is None else start.timestamp() if start.tzinfo is not None else epoch(start)
    )
    end = task_run.end_time
    expires = task_run.cache_expires_at
    deps = task_run.dependencies
    inputs = task_run.inputs
    error = task_run.error
    attempt_log = task_run.attempt_log
    return (
        task_run.id,
        task_run.flow_run_id,
        task_run.call_key,
        task_run.task_name,
        task_run.name,
        _STATE_VALUES[task_run.state],
        task_run.attempts,
        task_run.cached,
        task_run.rolled_back,
        start_epoch,  # first_start; kept from the first record by the upsert
        start_epoch,
        None if end is None else end.timestamp() if end.tzinfo is not None else epoch(end),
        task_run.parent_task_run_id,
        task_run.cache_key,
        None if expires is None else to_epoch(expires),
        result.serializer if result is not None else task_run.result_serializer,
        tags_json(task_run.tags) if task_run.tags else None,
        _encode([d.to_dict() for d in deps]) if deps else None,
        None if inputs is None else to_json(inputs, f"the inputs of task run {task_run.id}"),
        None if error is None else _encode(error.to_dict()),
        None if result is None else result.payload,
        _encode([a.to_dict() for a in attempt_log]) if attempt_log else None,
        task_run.args_fingerprint,
        task_run.host,
        task_run.flow_run_id,
        owner_token,
    )


def task_completion_params(
    completion: TaskCompletion, owner_token: str, result: StoredResult
) -> tuple[Any, ...]:
    """`task_run_params` of ``completion.task_run(result.serializer)``, built from
    the completion's fields directly (no TaskRun on the way)."""
    (
        task_run_id,
        flow_run_id,
        call_key,
        task_name,
        attempts,
        start_time,
        end_time,
        dependencies,
        parent_task_run_id,
        tags,
        args_fingerprint,
    ) = completion
    start = start_time.timestamp() if start_time.tzinfo is not None else epoch(start_time)
    return (
        task_run_id,
        flow_run_id,
        call_key,
        task_name,
        call_key,
        _COMPLETED,
        attempts,
        False,
        False,
        start,
        start,
        end_time.timestamp() if end_time.tzinfo is not None else epoch(end_time),
        parent_task_run_id,
        None,
        None,
        result.serializer,
        tags_json(tags) if tags else None,
        _encode([d.to_dict() for d in dependencies]) if dependencies else None,
        None,
        None,
        result.payload,
        None,
        args_fingerprint,
        None,
        flow_run_id,
        owner_token,
    )


def task_run_from_row(row: Sequence[Any]) -> TaskRun:
    """A TaskRun from the columns of the task_run_columns fragment."""
    start, end, expires, tags, deps, inputs, error = (
        row[9],
        row[10],
        row[13],
        row[15],
        row[16],
        row[17],
        row[18],
    )
    return TaskRun(
        id=row[0],
        flow_run_id=row[1],
        call_key=row[2],
        task_name=row[3],
        name=row[4],
        state=_STATES.get(row[5]) or state_of(row[5]),
        attempts=row[6],
        cached=bool(row[7]),
        rolled_back=bool(row[8]),
        start_time=None if start is None else _fromtimestamp(start, UTC),
        end_time=None if end is None else _fromtimestamp(end, UTC),
        parent_task_run_id=row[11],
        cache_key=row[12],
        cache_expires_at=None if expires is None else _fromtimestamp(expires, UTC),
        result_serializer=row[14],
        tags=() if tags is None else tuple(_decode(tags)),
        dependencies=() if deps is None else tuple(Dependency.from_dict(d) for d in _decode(deps)),
        inputs=None if inputs is None else _decode(inputs),
        error=None if error is None else error_from(error),
        has_result=bool(row[19]),
        attempt_log=()
        if row[20] is None
        else tuple(AttemptInfo.from_dict(a) for a in _decode(row[20])),
        args_fingerprint=row[21],
        host=row[22],
    )


def stored_result(row: Sequence[Any] | None) -> StoredResult | None:
    """A StoredResult from (serializer, payload), or None when nothing was stored."""
    if row is None or row[1] is None:
        return None
    return StoredResult(serializer=row[0], payload=bytes(row[1]))


# --- logs ------------------------------------------------------------------------


def log_params(log: LogRecord) -> tuple[Any, ...]:
    return (
        log.flow_run_id,
        log.task_run_id,
        to_epoch(log.timestamp),
        log.level,
        log.logger,
        log.message,
        log.trace_id,
        log.span_id,
    )


def log_from_row(row: Sequence[Any]) -> LogRecord:
    return LogRecord(
        id=row[0],
        flow_run_id=row[1],
        task_run_id=row[2],
        timestamp=_fromtimestamp(row[3], UTC),
        level=row[4],
        logger=row[5],
        message=row[6],
        trace_id=row[7],
        span_id=row[8],
    )
