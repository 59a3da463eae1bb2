"""In-process tests of the CLI's pieces that need no engine: parameter parsing,
summaries, resume hints, progress counting and the rich renderables."""

from __future__ import annotations

import io
import shlex
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import pytest
from rich.console import Console

from legato.cli.execute import choose_parameters, parse_param_pairs
from legato.cli.main import USAGE_ERRORS
from legato.cli.progress import RunTracker, progress_text
from legato.cli.render import (
    count_states,
    example_input,
    format_duration,
    format_elapsed,
    log_line,
    plain_summary,
    resume_command,
    summary_lines,
)
from legato.cli.tables import RunNode, run_tree, runs_table
from legato.errors import ParameterValidationError, RunNotFoundError, StoreError
from legato.records import ErrorInfo, FlowRun, LogRecord, PauseInfo, TaskRun
from legato.states import StateType

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
RUN_ID = "3f2a9c1e-0000-4000-8000-000000000001"


def run_record(**overrides: Any) -> FlowRun:
    fields: dict[str, Any] = {
        "id": RUN_ID,
        "flow_name": "etl",
        "name": "brave-otter",
        "state": StateType.COMPLETED,
        "parameters": {"n": 3},
        "start_time": T0,
        "end_time": T0 + timedelta(seconds=2.5),
        "attempts": 1,
    }
    fields.update(overrides)
    return FlowRun(**fields)


def task_record(key: str, state: StateType, **overrides: Any) -> TaskRun:
    fields: dict[str, Any] = {
        "id": f"id-{key}",
        "flow_run_id": RUN_ID,
        "call_key": key,
        "task_name": key.rsplit("-", 1)[0],
        "name": key,
        "state": state,
        "attempts": 1,
        "start_time": T0,
        "end_time": T0 + timedelta(milliseconds=20),
    }
    fields.update(overrides)
    return TaskRun(**fields)


# --- -p parsing -------------------------------------------------------------------


def test_param_pairs_read_json_else_text() -> None:
    parsed = parse_param_pairs(
        ("n=3", 'names=["a", "b"]', "flag=true", "day=2026-11-22", "empty=", "eq=a=b", "n=4")
    )
    assert {k: v for k, (v, _) in parsed.items()} == {
        "n": 4,  # the later one wins
        "names": ["a", "b"],
        "flag": True,
        "day": "2026-11-22",
        "empty": "",
        "eq": "a=b",
    }
    assert parsed["n"][1] == "4"


@pytest.mark.parametrize("bad", ["novalue", "=3", " =3"])
def test_param_pairs_need_a_name_and_equals(bad: str) -> None:
    with pytest.raises(click.BadParameter, match="NAME=VALUE"):
        parse_param_pairs((bad,))


class StrictStrClient:
    """Duck-typed client: ``name`` must be a str, ``n`` an int."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def validate_parameters(
        self, flow: object, params: dict[str, Any], *, partial: bool = False
    ) -> dict[str, Any]:
        self.seen.append(dict(params))
        problems = []
        if "name" in params and not isinstance(params["name"], str):
            problems.append("name: Input should be a valid string")
        if "n" in params and not isinstance(params["n"], int):
            problems.append("n: Input should be a valid integer")
        if problems:
            raise ParameterValidationError("f", problems)
        return params


def test_choose_parameters_overrides_params_json() -> None:
    client = StrictStrClient()
    chosen = choose_parameters(
        client,  # type: ignore[arg-type]
        None,
        {"n": 1, "name": "base"},
        parse_param_pairs(("n=2",)),
    )
    assert chosen == {"n": 2, "name": "base"}


def test_choose_parameters_falls_back_to_text_for_scalars() -> None:
    client = StrictStrClient()
    chosen = choose_parameters(client, None, {}, parse_param_pairs(("name=1.10", "n=3")))  # type: ignore[arg-type]
    # "1.10" was meant as text for a str parameter; n stays the JSON int.
    assert chosen == {"name": "1.10", "n": 3}


def test_choose_parameters_reports_what_text_did_not_fix() -> None:
    client = StrictStrClient()
    with pytest.raises(ParameterValidationError) as info:
        choose_parameters(client, None, {}, parse_param_pairs(("n=abc", "name=2")))  # type: ignore[arg-type]
    assert info.value.problems == ["n: Input should be a valid integer"]


# --- text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.0123, "0.012s"),
        (2.314, "2.31s"),
        (12.34, "12.3s"),
        (185, "3m 05s"),
        (7265, "2h 01m"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_elapsed() -> None:
    assert format_elapsed(7.94) == "7.9s"
    assert format_elapsed(750) == "12:30"
    assert format_elapsed(3723) == "1:02:03"


def test_log_line() -> None:
    record = LogRecord(RUN_ID, T0 + timedelta(milliseconds=5), 20, "hello")
    assert log_line(record, "extract-0") == "2026-11-22 08:00:00.005 INFO    [extract-0] hello"
    assert log_line(record) == "2026-11-22 08:00:00.005 INFO    hello"


def test_count_states() -> None:
    tasks = [
        task_record("a-0", StateType.COMPLETED, cached=True),
        task_record("a-1", StateType.COMPLETED),
        task_record("b-0", StateType.FAILED),
    ]
    assert count_states(tasks) == "1 failed, 2 completed (1 cached)"
    assert count_states([]) == "none"


APPROVAL = {
    "properties": {
        "approved": {"type": "boolean"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "level": {"type": "integer"},
    },
    "required": ["approved", "level"],
}


def test_example_input_uses_required_fields() -> None:
    assert example_input(APPROVAL) == {"approved": True, "level": 0}
    assert example_input({"properties": {"note": {"type": "string"}}}) == {"note": "..."}
    assert example_input(None) == {}


def test_resume_command_is_pasteable() -> None:
    pause = PauseInfo("approval", "flows:Approval", APPROVAL)
    command = resume_command(RUN_ID, pause)
    assert command == f"""legato resume {RUN_ID} --input '{{"approved": true, "level": 0}}'"""
    assert shlex.split(command)[-1] == '{"approved": true, "level": 0}'
    assert resume_command(RUN_ID, PauseInfo("wait")) == f"legato resume {RUN_ID}"


def test_summary_of_failed_run() -> None:
    run = run_record(state=StateType.FAILED, error=ErrorInfo("ValueError", "bad 1"))
    tasks = [
        task_record("add-0", StateType.COMPLETED),
        task_record("boom-0", StateType.FAILED, error=ErrorInfo("ValueError", "bad 1")),
    ]
    text = plain_summary(summary_lines(run, tasks))
    assert RUN_ID in text
    assert "failed in 2.50s" in text
    assert "1 failed, 1 completed" in text
    assert "ValueError: bad 1" in text
    assert "boom-0: ValueError: bad 1" in text
    assert f"legato resume {RUN_ID}" in text


def test_summary_of_paused_run_has_exact_resume_command() -> None:
    run = run_record(
        state=StateType.PAUSED,
        pause=PauseInfo("approval", "file:/tmp/flows.py:Approval", APPROVAL),
    )
    text = plain_summary(summary_lines(run, []))
    assert "approval, waiting for Approval" in text
    assert "approved (boolean), note (any, optional), level (integer)" in text
    assert resume_command(RUN_ID, run.pause) in text


def test_summary_of_completed_run_shows_result() -> None:
    text = plain_summary(summary_lines(run_record(), [], result=(True, {"total": 8})))
    assert 'result: {"total": 8}' in text


# --- progress -----------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_tracker_counts_tasks_once_and_lists_running() -> None:
    clock = FakeClock()
    tracker = RunTracker(clock=clock)
    tracker.flow_started(run_record(state=StateType.RUNNING))
    tracker.flow_started(run_record(id="child", flow_name="sub"))  # a subflow
    a = task_record("a-0", StateType.RUNNING)
    b = task_record("b-0", StateType.RUNNING)
    tracker.task_started(a)
    tracker.task_started(b)
    tracker.task_finished(task_record("a-0", StateType.COMPLETED))
    tracker.task_finished(task_record("a-0", StateType.COMPLETED))
    tracker.task_finished(task_record("c-0", StateType.FAILED))  # replayed: no start event
    clock.now += 7.5
    snap = tracker.snapshot()
    assert (snap.flow_name, snap.done, snap.total, snap.failed) == ("etl", 2, 3, 1)
    assert snap.running == ["b-0"]
    assert progress_text(snap) == "etl 3f2a9c1e · 2/3 tasks · 1 failed · running: b-0 · 7.5s"


def test_progress_text_caps_running_names() -> None:
    tracker = RunTracker()
    for i in range(5):
        tracker.task_started(task_record(f"t-{i}", StateType.RUNNING))
    text = progress_text(tracker.snapshot())
    assert text.startswith("starting · 0/5 tasks · running: t-0, t-1, t-2 (+2)")


# --- rich renderables ------------------------------------------------------------------


def render(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_run_tree_shows_tasks_errors_inputs_and_subflows() -> None:
    run = run_record(state=StateType.FAILED, error=ErrorInfo("ValueError", "bad 1"))
    failed = task_record(
        "boom-0",
        StateType.FAILED,
        attempts=2,
        start_time=T0 + timedelta(seconds=2),
        error=ErrorInfo("ValueError", "bad 1"),
        inputs={"x": "1"},
    )
    child = run_record(id="c" * 36, flow_name="sub", name="child", start_time=T0 + timedelta(1))
    recorded = task_record("load-0", StateType.COMPLETED, inputs={"rows": "[1, 2]"})
    node = RunNode(
        run,
        tasks=[task_record("add-0", StateType.COMPLETED, cached=True), failed, recorded],
        children=[RunNode(child, tasks=[task_record("inner-0", StateType.COMPLETED)])],
    )
    out = render(run_tree(node))
    assert f"flow run {RUN_ID}" in out
    assert "add-0" in out and "cached" in out
    assert "boom-0" in out and "attempts 2" in out
    assert "error: ValueError: bad 1" in out
    assert "inputs: x=1" in out
    assert "inputs: rows=[1, 2]" in out  # a completed task's, when recorded (record_inputs)
    assert "subflow cccccccc" in out and "inner-0" in out
    # Ordered by start time: the subflow started a day later than boom-0.
    assert out.index("boom-0") < out.index("subflow")


def test_runs_table() -> None:
    out = render(runs_table([run_record(), run_record(id="ab" * 18, state=StateType.PAUSED)]))
    assert "3f2a9c1e" in out and "abababab" in out
    assert "completed" in out and "paused" in out
    assert "n=3" in out


def test_usage_errors_are_legato_errors_worth_exit_2() -> None:
    assert issubclass(RunNotFoundError, USAGE_ERRORS)
    assert not issubclass(StoreError, USAGE_ERRORS)
