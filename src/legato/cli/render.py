"""Text for people: durations, log lines, run summaries, resume commands.

Plain-string helpers live here; rich renderables (tables, trees) live in
`legato.cli.tables`, so commands that print plain text never import rich.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from legato.client.views import duration_seconds, level_name, shorten
from legato.records import FlowRun, LogRecord, PauseInfo, TaskRun
from legato.states import StateType

# rich styles per state; plain output ignores them.
STATE_STYLES: Mapping[StateType, str] = {
    StateType.COMPLETED: "green",
    StateType.FAILED: "red",
    StateType.CRASHED: "bold red",
    StateType.CANCELLED: "yellow",
    StateType.PAUSED: "magenta",
    StateType.RUNNING: "cyan",
    StateType.PENDING: "dim",
    StateType.SCHEDULED: "dim",
}

# Order in which state counts are listed: what a reader looks for first.
_COUNT_ORDER = (
    StateType.FAILED,
    StateType.CRASHED,
    StateType.COMPLETED,
    StateType.CANCELLED,
    StateType.PAUSED,
    StateType.RUNNING,
    StateType.PENDING,
    StateType.SCHEDULED,
)


def format_duration(seconds: float | None) -> str:
    """``0.012s``, ``2.31s``, ``3m 05s``, ``2h 01m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.3f}s" if seconds < 1 else f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_elapsed(seconds: float) -> str:
    """A running clock: ``7.9s``, then ``12:30``, ``1:02:03``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_time(value: datetime | None) -> str:
    """A UTC timestamp to the second, compact for tables: ``2026-11-22 08:00:00Z``."""
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def short_id(run_id: str, length: int = 8) -> str:
    return run_id[:length]


def error_line(error_type: str, message: str, limit: int = 300) -> str:
    """``ValueError: bad row`` on one line, shortened."""
    text = f"{error_type}: {message}" if message else error_type
    return shorten(text, limit)


def log_line(record: LogRecord, task_name: str | None = None) -> str:
    """``2026-11-22 08:00:00.123 INFO    [extract-0] message``."""
    ts = record.timestamp
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    when = ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    where = f"[{task_name}] " if task_name else ""
    return f"{when} {level_name(record.level):<8}{where}{record.message}"


def format_parameters(parameters: Mapping[str, Any], limit: int = 60) -> str:
    """``a=1, names=['x', 'y']``, shortened; for tables and summaries."""
    if not parameters:
        return ""
    text = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in parameters.items())
    return shorten(text, limit)


def format_inputs(inputs: Mapping[str, str], limit: int = 400) -> str:
    """Inputs of a failed task (already shortened reprs): ``rows=[1, 2], n=3``."""
    return shorten(", ".join(f"{k}={shorten(v, 120)}" for k, v in inputs.items()), limit)


# --- resume hints -----------------------------------------------------------------


def _example_value(prop: Mapping[str, Any]) -> Any:
    """A value that a field with this JSON schema would accept, for an example command."""
    if "default" in prop:
        return prop["default"]
    if prop.get("enum"):
        return prop["enum"][0]
    kind = prop.get("type")
    if kind is None:
        for option in prop.get("anyOf", ()):
            if isinstance(option, Mapping) and option.get("type") not in (None, "null"):
                kind = option.get("type")
                break
    return {
        "boolean": True,
        "integer": 0,
        "number": 0.0,
        "array": [],
        "object": {},
        "null": None,
    }.get(str(kind), "...")


def example_input(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """An example JSON object for a RunInput model's schema: its required fields
    (all fields when none is required)."""
    if not schema:
        return {}
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = [name for name in schema.get("required", ()) if name in props]
    names = required or list(props)
    return {name: _example_value(props[name]) for name in names}


def resume_command(run_id: str, pause: PauseInfo | None) -> str:
    """The exact command that resumes a paused run, with example input when it waits
    for some; quoted for a POSIX shell so it can be pasted as is."""
    if pause is None or pause.input_model is None:
        return f"legato resume {run_id}"
    example = json.dumps(example_input(pause.input_schema), ensure_ascii=False)
    return f"legato resume {run_id} --input {shlex.quote(example)}"


def model_name(pause: PauseInfo) -> str | None:
    """``Approval`` from a reference like ``file:/path/flows.py:Approval``."""
    if pause.input_model is None:
        return None
    return pause.input_model.rpartition(":")[2] or pause.input_model


def input_fields(pause: PauseInfo) -> str:
    """``approved (boolean), note (string)``: what the paused run asks for."""
    schema = pause.input_schema or {}
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required", ()))
    parts = []
    for name, prop in props.items():
        kind = prop.get("type") or "any"
        optional = "" if name in required else ", optional"
        parts.append(f"{name} ({kind}{optional})")
    return ", ".join(parts)


# --- summaries ----------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One summary line: a label, its text, and a rich style for the text."""

    label: str
    text: str
    style: str = ""


def count_states(task_runs: Iterable[TaskRun]) -> str:
    """``3 completed (1 cached), 1 failed``; ``none`` when there are no task runs."""
    counts: Counter[StateType] = Counter()
    cached = rolled_back = 0
    for tr in task_runs:
        counts[tr.state] += 1
        cached += tr.cached
        rolled_back += tr.rolled_back
    parts = []
    for state in _COUNT_ORDER:
        if counts[state]:
            part = f"{counts[state]} {state.value}"
            if state is StateType.COMPLETED and cached:
                part += f" ({cached} cached)"
            parts.append(part)
    if rolled_back:
        parts.append(f"{rolled_back} rolled back")
    return ", ".join(parts) or "none"


def summary_lines(
    run: FlowRun,
    task_runs: list[TaskRun],
    *,
    result: tuple[bool, Any] = (False, None),
) -> list[Line]:
    """What a person wants to know when a run stops: which run, how it ended,
    how long it took, what its tasks did, what went wrong, and what to do next."""
    style = STATE_STYLES.get(run.state, "")
    took = format_duration(duration_seconds(run.start_time, run.end_time))
    lines = [
        Line("run", f"{run.id}  ({run.flow_name} / {run.name})"),
        Line("state", run.state.value + (f" in {took}" if took != "-" else ""), style),
        Line("tasks", count_states(task_runs)),
    ]
    if run.error is not None:
        lines.append(Line("error", error_line(run.error.type, run.error.message), "red"))
    elif run.state_message and run.state is not StateType.COMPLETED:
        lines.append(Line("message", shorten(run.state_message, 300)))
    failed = [tr for tr in task_runs if tr.state in (StateType.FAILED, StateType.CRASHED)]
    for tr in failed[:3]:
        what = error_line(tr.error.type, tr.error.message, 200) if tr.error else tr.state.value
        lines.append(Line("failed task", f"{tr.call_key}: {what}", "red"))
    if len(failed) > 3:
        lines.append(Line("", f"... and {len(failed) - 3} more failed tasks", "red"))
    has_result, value = result
    if has_result and run.state is StateType.COMPLETED:
        lines.append(Line("result", shorten(json.dumps(value, ensure_ascii=False), 200)))
    if run.state is StateType.PAUSED:
        pause = run.pause
        if pause is not None:
            waits = f", waiting for {model_name(pause)}" if pause.input_model else ""
            lines.append(Line("paused at", f"{pause.key}{waits}", "magenta"))
            if pause.input_model and pause.input_schema:
                lines.append(Line("input", input_fields(pause)))
        lines.append(Line("resume with", resume_command(run.id, pause), "bold"))
    elif run.state in (StateType.FAILED, StateType.CRASHED):
        lines.append(Line("resume with", resume_command(run.id, None)))
    return lines


def plain_summary(lines: list[Line]) -> str:
    width = max((len(line.label) for line in lines), default=0) + 1
    return "\n".join(
        f"{(line.label + ':') if line.label else '':<{width}} {line.text}" for line in lines
    )
