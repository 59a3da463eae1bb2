"""Exporting one flow run as versioned JSON (`legato export`), and reading it back.

An export carries what a replay check needs without access to the store it
came from: the run record and its parameters, and each task run in call order
with its call key, task name, state, argument fingerprint and stored result.
Payloads (results, pickled parameters) travel as base64 beside their
serializer, exactly as stored. Logs are included on request.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from legato import _clock
from legato.errors import RunExportError, RunNotFoundError
from legato.records import ErrorInfo, FlowRun, StoredResult, TaskRun
from legato.states import StateType
from legato.store.base import Store

EXPORT_FORMAT = "legato-run-export"
EXPORT_VERSION = 1
# Logs exported per run at most (the store pages them).
MAX_LOG_LINES = 100_000


@dataclass(frozen=True, slots=True)
class ExportedTask:
    """One task run of an export: its record and its stored result, if any."""

    record: TaskRun
    result: StoredResult | None


@dataclass(frozen=True, slots=True)
class RunExport:
    """A run export read back: the run, its parameters payload, result and task runs."""

    run: FlowRun
    parameters_blob: bytes | None
    result: StoredResult | None
    tasks: tuple[ExportedTask, ...]


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _payload(stored: StoredResult | None) -> dict[str, str] | None:
    if stored is None:
        return None
    return {"serializer": stored.serializer, "payload": base64.b64encode(stored.payload).decode()}


def _run_dict(run: FlowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "flow_name": run.flow_name,
        "name": run.name,
        "state": run.state.value,
        "parameters": run.parameters,
        "entrypoint": run.entrypoint,
        "flow_version": run.flow_version,
        "tags": list(run.tags),
        "created": _time(run.created),
        "start_time": _time(run.start_time),
        "end_time": _time(run.end_time),
        "state_message": run.state_message,
        "error": None if run.error is None else run.error.to_dict(),
        "attempts": run.attempts,
        "result_serializer": run.result_serializer,
        "has_result": run.has_result,
        "deployment": run.deployment,
    }


def _task_dict(task: TaskRun, result: StoredResult | None) -> dict[str, Any]:
    return {
        "id": task.id,
        "call_key": task.call_key,
        "task_name": task.task_name,
        "name": task.name,
        "state": task.state.value,
        "attempts": task.attempts,
        "cached": task.cached,
        "rolled_back": task.rolled_back,
        "start_time": _time(task.start_time),
        "end_time": _time(task.end_time),
        "error": None if task.error is None else task.error.to_dict(),
        "inputs": task.inputs,
        "parent_task_run_id": task.parent_task_run_id,
        "args_fingerprint": task.args_fingerprint,
        "has_result": task.has_result,
        "result": _payload(result),
    }


def export_run(store: Store, run_id: str, *, include_logs: bool = False) -> dict[str, Any]:
    """The JSON-ready export of flow run ``run_id`` (a full id) of ``store``."""
    run = store.get_flow_run(run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    tasks = sorted(
        store.list_task_runs(run.id),
        key=lambda t: (t.start_time is None, t.start_time or run.created, t.call_key),
    )
    blob = store.get_parameters_blob(run.id)
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "run": _run_dict(run),
        "parameters_blob": None if blob is None else base64.b64encode(blob).decode(),
        "result": _payload(store.get_flow_result(run.id)) if run.has_result else None,
        "tasks": [
            _task_dict(t, store.get_task_result(t.id) if t.has_result else None) for t in tasks
        ],
    }
    if include_logs:
        data["logs"] = [
            {
                "timestamp": line.timestamp.isoformat(),
                "level": line.level,
                "logger": line.logger,
                "message": line.message,
                "task_run_id": line.task_run_id,
            }
            for line in store.read_logs(run.id, limit=MAX_LOG_LINES)
        ]
    return data


# --- reading an export back ---------------------------------------------------------


def parse_export(text: str, source: str = "the export") -> RunExport:
    """Read the JSON text of an export; `RunExportError` says what is wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RunExportError(
            f"{source} is not JSON ({exc}); give a file written by `legato export RUN > run.json`"
        ) from None
    return read_export(data, source)


def read_export(data: Any, source: str = "the export") -> RunExport:
    """The run export in ``data`` (the parsed JSON of `export_run`)."""
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise RunExportError(
            f'{source} is not a legato run export (no "format": "{EXPORT_FORMAT}"); '
            f"write one with `legato export RUN > run.json`"
        )
    version = data.get("version")
    if version != EXPORT_VERSION:
        raise RunExportError(
            f"{source} has export format version {version!r}; this legato reads version "
            f"{EXPORT_VERSION}: export the run again with this legato version"
        )
    try:
        return _read(data)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise RunExportError(
            f"{source} is damaged ({type(exc).__name__}: {exc}); export the run again"
        ) from None


def _opt_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _stored(value: Any) -> StoredResult | None:
    if value is None:
        return None
    return StoredResult(
        serializer=str(value["serializer"]),
        payload=base64.b64decode(str(value["payload"]), validate=True),
    )


def _read(data: dict[str, Any]) -> RunExport:
    r = data["run"]
    created = _opt_time(r.get("created"))
    run = FlowRun(
        id=str(r["id"]),
        flow_name=str(r["flow_name"]),
        name=str(r["name"]),
        state=StateType(r["state"]),
        parameters=dict(r.get("parameters") or {}),
        entrypoint=r.get("entrypoint"),
        flow_version=r.get("flow_version"),
        tags=tuple(str(t) for t in r.get("tags") or ()),
        created=created or _clock.now(),
        start_time=_opt_time(r.get("start_time")),
        end_time=_opt_time(r.get("end_time")),
        state_message=r.get("state_message"),
        error=ErrorInfo.from_dict(r.get("error")),
        attempts=int(r.get("attempts") or 0),
        result_serializer=r.get("result_serializer"),
        has_result=bool(r.get("has_result")),
        deployment=r.get("deployment"),
    )
    blob = data.get("parameters_blob")
    tasks = []
    for t in data["tasks"]:
        record = TaskRun(
            id=str(t["id"]),
            flow_run_id=run.id,
            call_key=str(t["call_key"]),
            task_name=str(t["task_name"]),
            name=str(t.get("name") or t["call_key"]),
            state=StateType(t["state"]),
            attempts=int(t.get("attempts") or 0),
            cached=bool(t.get("cached")),
            rolled_back=bool(t.get("rolled_back")),
            start_time=_opt_time(t.get("start_time")),
            end_time=_opt_time(t.get("end_time")),
            error=ErrorInfo.from_dict(t.get("error")),
            inputs=t.get("inputs"),
            parent_task_run_id=t.get("parent_task_run_id"),
            args_fingerprint=t.get("args_fingerprint"),
            has_result=bool(t.get("has_result")),
        )
        tasks.append(ExportedTask(record, _stored(t.get("result"))))
    return RunExport(
        run=run,
        parameters_blob=None if blob is None else base64.b64decode(str(blob), validate=True),
        result=_stored(data.get("result")),
        tasks=tuple(tasks),
    )
