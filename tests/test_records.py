"""Records keep dataclass behaviour with the fast constructor the engine relies on."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from legato.records import Dependency, ErrorInfo, FlowRun, LogRecord, TaskRun
from legato.states import StateType

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def full_task_run() -> TaskRun:
    return TaskRun(
        id="t1",
        flow_run_id="f1",
        call_key="inc[0]",
        task_name="inc",
        name="inc[0]",
        state=StateType.FAILED,
        attempts=2,
        cached=True,
        rolled_back=True,
        start_time=NOW,
        end_time=NOW,
        error=ErrorInfo("ValueError", "bad"),
        inputs={"x": "1"},
        dependencies=(Dependency("t0", "data", "x"),),
        parent_task_run_id="p",
        tags=("a",),
        cache_key="k",
        cache_expires_at=NOW,
        result_serializer="json",
        has_result=True,
    )


def test_every_field_is_set_as_given() -> None:
    record = full_task_run()
    expected = {
        "id": "t1",
        "state": StateType.FAILED,
        "attempts": 2,
        "cached": True,
        "inputs": {"x": "1"},
        "dependencies": (Dependency("t0", "data", "x"),),
        "result_serializer": "json",
        "has_result": True,
    }
    for name, value in expected.items():
        assert getattr(record, name) == value
    assert dataclasses.replace(record) == record
    assert dataclasses.asdict(record)["error"] == {
        "type": "ValueError",
        "message": "bad",
        "traceback": None,
    }


def test_defaults_and_factories() -> None:
    a = FlowRun(id="a", flow_name="f", name="n", state=StateType.PENDING)
    b = FlowRun(id="b", flow_name="f", name="n", state=StateType.PENDING)
    assert a.parameters == {} and a.parameters is not b.parameters  # a fresh dict each
    assert a.created.tzinfo is not None
    assert a.tags == () and a.attempts == 0 and a.pause is None
    log = LogRecord(flow_run_id="a", timestamp=NOW, level=20, message="m")
    assert log.logger == "legato" and log.task_run_id is None and log.id is None


def test_still_frozen_and_strict_about_arguments() -> None:
    record = full_task_run()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.state = StateType.COMPLETED  # type: ignore[misc]
    with pytest.raises(TypeError, match="required positional"):
        TaskRun(id="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        FlowRun(id="a", flow_name="f", name="n", state=StateType.PENDING, nope=1)  # type: ignore[call-arg]
