"""JSON views of records, built by hand: shapes, UTC times, nulls, shortening."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum

import pytest

from legato.client.views import (
    flow_run_to_dict,
    isoformat,
    jsonable,
    late_seconds,
    log_to_dict,
    short_repr,
    shorten,
    task_run_to_dict,
)
from legato.records import (
    Dependency,
    ErrorInfo,
    FlowRun,
    LogRecord,
    PauseInfo,
    RunOwner,
    TaskRun,
)
from legato.states import StateType

T0 = datetime(2026, 11, 22, 8, 0, 0, 123456, tzinfo=UTC)


def make_run(**overrides: object) -> FlowRun:
    fields: dict[str, object] = {
        "id": "3f2a9c1e-0000-4000-8000-000000000001",
        "flow_name": "etl",
        "name": "brave-otter",
        "state": StateType.FAILED,
        "parameters": {"n": 3, "names": ["a", "b"]},
        "created": T0 - timedelta(seconds=1),
        "start_time": T0,
        "end_time": T0 + timedelta(seconds=2, microseconds=500000),
        "error": ErrorInfo("ValueError", "boom", "Traceback ...\nValueError: boom"),
        "attempts": 2,
        "tags": ("nightly",),
        "owner": RunOwner(token="secret-token", host="box", pid=42),
    }
    fields.update(overrides)
    return FlowRun(**fields)  # type: ignore[arg-type]


def make_task(**overrides: object) -> TaskRun:
    fields: dict[str, object] = {
        "id": "t-1",
        "flow_run_id": "3f2a9c1e-0000-4000-8000-000000000001",
        "call_key": "transform-0",
        "task_name": "transform",
        "name": "transform-0",
        "state": StateType.FAILED,
        "attempts": 3,
        "start_time": T0,
        "end_time": T0 + timedelta(milliseconds=250),
        "error": ErrorInfo("KeyError", "'id'", "tb"),
        "inputs": {"rows": "[{'a': 1}, …]"},
        "dependencies": (Dependency("t-0", "data", "rows"), Dependency("t-9", "wait_for")),
    }
    fields.update(overrides)
    return TaskRun(**fields)  # type: ignore[arg-type]


def test_flow_run_dict_has_documented_fields_and_is_json() -> None:
    data = flow_run_to_dict(make_run())
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["id"] == "3f2a9c1e-0000-4000-8000-000000000001"
    assert data["flow"] == "etl"
    assert data["name"] == "brave-otter"
    assert data["state"] == "failed"
    assert data["parameters"] == {"n": 3, "names": ["a", "b"]}
    assert data["start_time"] == "2026-11-22T08:00:00.123456+00:00"
    assert data["end_time"] == "2026-11-22T08:00:02.623456+00:00"
    assert data["created"] == "2026-11-22T07:59:59.123456+00:00"
    assert data["duration"] == pytest.approx(2.5)
    assert data["attempts"] == 2
    assert data["error"] == {"type": "ValueError", "message": "boom"}
    assert data["parent_run_id"] is None
    assert data["tags"] == ["nightly"]
    assert data["state_message"] is None
    assert data["pause"] is None
    assert data["host"] == "box" and data["pid"] == 42
    # The owner token fences writes; it never leaves the process in a view.
    assert "secret-token" not in json.dumps(data)


def test_flow_run_dict_shows_where_a_queued_run_waits() -> None:
    assert flow_run_to_dict(make_run())["work_queue"] is None
    data = flow_run_to_dict(make_run(work_queue="gpu", priority=3, scheduled_time=T0))
    assert (data["work_queue"], data["priority"]) == ("gpu", 3)
    assert data["scheduled_time"] == "2026-11-22T08:00:00.123456+00:00"


def test_a_queued_run_past_its_due_time_is_late() -> None:
    waiting = make_run(state=StateType.SCHEDULED, work_queue="q", scheduled_time=T0)
    assert late_seconds(waiting, now=T0 + timedelta(seconds=10)) is None  # within grace
    assert late_seconds(waiting, now=T0 + timedelta(seconds=75)) == 75.0
    started = make_run(
        state=StateType.COMPLETED, work_queue="q", scheduled_time=T0 - timedelta(seconds=20)
    )
    assert late_seconds(started) == 20.0  # started 20 s after it was due
    assert late_seconds(make_run(state=StateType.SCHEDULED)) is None  # not queued
    assert flow_run_to_dict(make_run())["late_seconds"] is None


def test_flow_run_dict_tracebacks_only_on_request() -> None:
    data = flow_run_to_dict(make_run(), tracebacks=True)
    assert data["error"]["traceback"].endswith("ValueError: boom")


def test_flow_run_dict_unfinished_run_has_nulls_not_missing_keys() -> None:
    run = make_run(state=StateType.RUNNING, start_time=None, end_time=None, error=None, owner=None)
    data = flow_run_to_dict(run)
    assert data["start_time"] is None
    assert data["end_time"] is None
    assert data["duration"] is None
    assert data["error"] is None
    assert data["host"] is None


def test_flow_run_dict_pause() -> None:
    schema = {"properties": {"approved": {"type": "boolean"}}, "required": ["approved"]}
    run = make_run(
        state=StateType.PAUSED,
        error=None,
        pause=PauseInfo(
            key="approval",
            input_model="flows:Approval",
            input_schema=schema,
            timeout_at=T0 + timedelta(hours=1),
        ),
    )
    data = flow_run_to_dict(run)
    assert data["state"] == "paused"
    assert data["pause"] == {
        "key": "approval",
        "input_model": "flows:Approval",
        "input_schema": schema,
        "timeout_at": "2026-11-22T09:00:00.123456+00:00",
    }


def test_times_are_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 11, 22, 10, 0, tzinfo=plus_two)
    assert isoformat(local) == "2026-11-22T08:00:00+00:00"
    # A naive datetime is taken to be UTC, not local time.
    assert isoformat(datetime(2026, 11, 22, 8, 0)) == "2026-11-22T08:00:00+00:00"
    assert isoformat(None) is None


def test_task_run_dict() -> None:
    data = task_run_to_dict(make_task())
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["key"] == "transform-0"
    assert data["name"] == "transform-0"
    assert data["task"] == "transform"
    assert data["state"] == "failed"
    assert data["attempts"] == 3
    assert data["cached"] is False
    assert data["rolled_back"] is False
    assert data["duration"] == pytest.approx(0.25)
    assert data["error"] == {"type": "KeyError", "message": "'id'"}
    assert data["inputs"] == {"rows": "[{'a': 1}, …]"}
    assert data["dependencies"] == [
        {"upstream_id": "t-0", "kind": "data", "parameter": "rows"},
        {"upstream_id": "t-9", "kind": "wait_for", "parameter": None},
    ]
    assert data["idempotency_key"] == "3f2a9c1e-0000-4000-8000-000000000001/transform-0"


def test_task_run_dict_completed_cached() -> None:
    task = make_task(state=StateType.COMPLETED, error=None, inputs=None, cached=True)
    data = task_run_to_dict(task)
    assert data["state"] == "completed"
    assert data["cached"] is True
    assert data["error"] is None
    assert data["inputs"] is None


def test_log_dict() -> None:
    record = LogRecord(
        flow_run_id="r1", timestamp=T0, level=30, message="careful", task_run_id="t-1", id=7
    )
    assert log_to_dict(record) == {
        "id": 7,
        "flow_run_id": "r1",
        "task_run_id": "t-1",
        "timestamp": "2026-11-22T08:00:00.123456+00:00",
        "level": "WARNING",
        "level_no": 30,
        "logger": "legato",
        "message": "careful",
        "trace_id": None,
        "span_id": None,
    }


class Color(Enum):
    RED = "red"


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("nope")


def test_jsonable_guards_odd_values() -> None:
    value = {
        "t": (1, 2),
        "s": {3},
        "e": Color.RED,
        "d": T0,
        "nan": math.nan,
        "o": Opaque(),
        1: "int key",
    }
    out = jsonable(value)
    assert out == {
        "t": [1, 2],
        "s": [3],
        "e": "red",
        "d": "2026-11-22T08:00:00.123456+00:00",
        "nan": "nan",
        "o": "<Opaque>",
        "1": "int key",
    }
    json.dumps(out, allow_nan=False)


def test_jsonable_survives_cycles() -> None:
    loop: list[object] = []
    loop.append(loop)
    json.dumps(jsonable(loop))


def test_shorten_keeps_both_ends() -> None:
    text = "[" + ", ".join(str(i) for i in range(100)) + "]"
    short = shorten(text, 21)
    assert len(short) == 21
    assert short.startswith("[0, 1, 2")
    assert short.endswith("98, 99]")
    assert "…" in short
    assert shorten("short", 80) == "short"
    assert shorten("a\nb   c", 80) == "a b c"
    assert shorten("abcdef", 2) == "ab"


def test_short_repr_never_raises() -> None:
    assert short_repr(BrokenRepr()) == "<BrokenRepr: repr failed: RuntimeError>"
    assert short_repr("x" * 500, 30).startswith("'xxx")
    assert len(short_repr("x" * 500, 30)) == 30
