"""JSON views of records: plain dicts that ``json.dumps`` accepts as they are.

One shape per record, shared by the CLI's ``--json`` output and (later) the
REST API, so that a script written against one works against the other.
Pure functions: no store access, no clock, no I/O.

Conventions: states are their lowercase names, times are ISO 8601 in UTC
(``2026-11-22T08:00:00.123456+00:00``), durations are seconds as floats, and a
missing value is ``None`` (``null``), never an absent key.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from legato.records import (
    Dependency,
    Deployment,
    ErrorInfo,
    FlowRun,
    LogRecord,
    PauseInfo,
    Schedule,
    StoreStatus,
    TaskRun,
    WorkerInfo,
)

__all__ = [
    "dependency_to_dict",
    "duration_seconds",
    "error_to_dict",
    "flow_run_to_dict",
    "isoformat",
    "jsonable",
    "log_to_dict",
    "pause_to_dict",
    "shorten",
    "task_run_to_dict",
]

# Deep or cyclic structures in parameters must not hang or blow the stack.
_MAX_DEPTH = 20


# A queued run not started this long after its due time is late (as in Prefect).
LATE_AFTER_SECONDS = 15.0


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 in UTC; a naive datetime is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def duration_seconds(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from ``start`` to ``end``, or None until both are known."""
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def shorten(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to at most ``limit`` characters, keeping both ends.

    The end of a repr often says the most (a closing bracket, the last field),
    so the middle is what gets dropped.
    """
    if "\n" in text:
        text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if limit < 3:
        return text[: max(limit, 0)]
    head = limit // 2
    tail = limit - 1 - head  # one character goes to the ellipsis
    return f"{text[:head]}…{text[len(text) - tail :]}"


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` shortened for display; a repr that raises is reported, not raised."""
    try:
        text = repr(value)
    except Exception as exc:  # a user's __repr__ may be broken; display must go on
        text = f"<{type(value).__name__}: repr failed: {type(exc).__name__}>"
    return shorten(text, limit)


def jsonable(value: Any, _depth: int = 0) -> Any:
    """``value`` as something ``json.dumps`` accepts (strict JSON: no NaN).

    Parameters are stored as a JSON view already; this is a guard for values
    that slipped through (a tuple, an enum, a datetime, a custom object), which
    become their nearest JSON form or, failing that, their short repr.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if _depth >= _MAX_DEPTH:
        return short_repr(value)
    if isinstance(value, Enum):
        return jsonable(value.value, _depth + 1)
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, _depth + 1) for v in value]
    return short_repr(value, 200)


def error_to_dict(error: ErrorInfo | None, *, traceback: bool = False) -> dict[str, Any] | None:
    """``{"type", "message"}`` (plus ``"traceback"`` when asked), or None."""
    if error is None:
        return None
    data: dict[str, Any] = {"type": error.type, "message": error.message}
    if traceback:
        data["traceback"] = error.traceback
    return data


def pause_to_dict(pause: PauseInfo | None) -> dict[str, Any] | None:
    if pause is None:
        return None
    return {
        "key": pause.key,
        "input_model": pause.input_model,
        "input_schema": jsonable(pause.input_schema),
        "timeout_at": isoformat(pause.timeout_at),
    }


def dependency_to_dict(dependency: Dependency) -> dict[str, Any]:
    return {
        "upstream_id": dependency.upstream_id,
        "kind": dependency.kind,
        "parameter": dependency.parameter,
    }


def flow_run_to_dict(run: FlowRun, *, tracebacks: bool = False) -> dict[str, Any]:
    """A flow run as JSON. ``tracebacks`` adds the error's traceback (detail views)."""
    owner = run.owner
    return {
        "id": run.id,
        "name": run.name,
        "flow": run.flow_name,
        "state": run.state.value,
        "state_message": run.state_message,
        "parameters": jsonable(run.parameters),
        "created": isoformat(run.created),
        "start_time": isoformat(run.start_time),
        "end_time": isoformat(run.end_time),
        "duration": duration_seconds(run.start_time, run.end_time),
        "attempts": run.attempts,
        "error": error_to_dict(run.error, traceback=tracebacks),
        "parent_run_id": run.parent_run_id,
        "parent_call_key": run.parent_call_key,
        "tags": list(run.tags),
        "entrypoint": run.entrypoint,
        "flow_version": run.flow_version,
        "cancel_requested": run.cancel_requested,
        "pause": pause_to_dict(run.pause),
        # Where it runs, for "which machine has it?"; the owner token stays private
        # because it fences writes.
        "host": owner.host if owner else None,
        "pid": owner.pid if owner else None,
        "heartbeat_at": isoformat(run.heartbeat_at),
        "has_result": run.has_result,
        # Set for runs queued for workers: the queue, its priority, and when it is due.
        "work_queue": run.work_queue,
        "priority": run.priority,
        "scheduled_time": isoformat(run.scheduled_time),
        "late_seconds": late_seconds(run),
        "deployment": run.deployment,
    }


def late_seconds(run: FlowRun, now: datetime | None = None) -> float | None:
    """How late a queued run is: seconds past its due time while still waiting for a
    worker (beyond `LATE_AFTER_SECONDS`), or how late it started; None if on time."""
    due = run.scheduled_time
    if due is None or run.work_queue is None:
        return None
    if run.state.value == "scheduled":
        behind = ((now or datetime.now(UTC)) - due).total_seconds()
    elif run.start_time is not None:
        behind = (run.start_time - due).total_seconds()
    else:
        return None
    return round(behind, 3) if behind > LATE_AFTER_SECONDS else None


def task_run_to_dict(task_run: TaskRun, *, tracebacks: bool = False) -> dict[str, Any]:
    """A task run as JSON; ``key`` is its call key (stable across resumes)."""
    return {
        "id": task_run.id,
        "flow_run_id": task_run.flow_run_id,
        "key": task_run.call_key,
        "name": task_run.name,
        "task": task_run.task_name,
        "state": task_run.state.value,
        "attempts": task_run.attempts,
        "cached": task_run.cached,
        "rolled_back": task_run.rolled_back,
        "start_time": isoformat(task_run.start_time),
        "end_time": isoformat(task_run.end_time),
        "duration": duration_seconds(task_run.start_time, task_run.end_time),
        "error": error_to_dict(task_run.error, traceback=tracebacks),
        "inputs": dict(task_run.inputs) if task_run.inputs is not None else None,
        "dependencies": [dependency_to_dict(d) for d in task_run.dependencies],
        "parent_task_run_id": task_run.parent_task_run_id,
        "tags": list(task_run.tags),
        "cache_key": task_run.cache_key,
        "cache_expires_at": isoformat(task_run.cache_expires_at),
        "idempotency_key": task_run.idempotency_key,
        # Set when a remote task runner ran the body: "host (pid N)".
        "host": task_run.host,
        # Empty for a task run that took one attempt.
        "attempt_log": [a.to_dict() for a in task_run.attempt_log],
    }


def level_name(level: int) -> str:
    """``INFO`` for 20, ``LEVEL 25`` for a level logging does not name."""
    return logging.getLevelName(level)


def log_to_dict(record: LogRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "flow_run_id": record.flow_run_id,
        "task_run_id": record.task_run_id,
        "timestamp": isoformat(record.timestamp),
        "level": level_name(record.level),
        "level_no": record.level,
        "logger": record.logger,
        "message": record.message,
        "trace_id": record.trace_id,  # the span it was written in, when traces were on
        "span_id": record.span_id,
    }


def worker_to_dict(worker: WorkerInfo) -> dict[str, Any]:
    return {
        "id": worker.id,
        "name": worker.name,
        "host": worker.host,
        "pid": worker.pid,
        "queues": list(worker.queues),
        "concurrency": worker.concurrency,
        "running": worker.running,
        "started": isoformat(worker.started),
        "heartbeat_at": isoformat(worker.heartbeat_at),
        "stopped_at": isoformat(worker.stopped_at),
    }


def schedule_to_dict(schedule: Schedule) -> dict[str, Any]:
    from legato.schedules import describe

    return {
        "cron": schedule.cron,
        "interval": schedule.interval,
        "rrule": schedule.rrule,
        "timezone": schedule.timezone,
        "anchor": isoformat(schedule.anchor),
        "description": describe(schedule),
    }


def deployment_to_dict(
    deployment: Deployment, next_runs: list[datetime] | None = None
) -> dict[str, Any]:
    return {
        "name": deployment.name,
        "id": deployment.id,
        "flow": deployment.flow_name,
        "entrypoint": deployment.entrypoint,
        "parameters": jsonable(deployment.parameters),
        "schedules": [schedule_to_dict(s) for s in deployment.schedules],
        "work_queue": deployment.work_queue,
        "priority": deployment.priority,
        "tags": list(deployment.tags),
        "concurrency_limit": deployment.concurrency_limit,
        "collision_strategy": deployment.collision_strategy.value,
        "description": deployment.description,
        "paused": deployment.paused,
        "catchup": deployment.catchup,
        "timeout_seconds": deployment.timeout_seconds,
        "retries": deployment.retries,
        "deadlines": [
            {
                "within_seconds": d.within.total_seconds(),
                "reference": d.reference,
                "action": d.action,
            }
            for d in deployment.deadlines
        ],
        "created": isoformat(deployment.created),
        "updated": isoformat(deployment.updated),
        "next_runs": [isoformat(t) for t in next_runs or []],
    }


def store_status_to_dict(status: StoreStatus) -> dict[str, Any]:
    """`legato db status --json` and ``GET /api/store``; the URL's password masked."""
    return {
        "backend": status.backend,
        "url": status.url,
        "schema_version": status.schema_version,
        "latest_version": status.latest_version,
        "size_bytes": status.size_bytes,
        "row_counts": status.row_counts,
        "migrated_on_open": list(status.migrated_on_open),
    }
