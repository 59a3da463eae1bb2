"""A run's timeline (Gantt): one bar per task run, a folded map as one row
showing the span of its members and how many ran at once.

Pure functions; the template draws the rows. A task run that took several
attempts (retries, or a resume after it failed) has one bar per attempt,
coloured by how each ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from legato.records import AttemptInfo, TaskRun
from legato.server.ui.graph import Graph

WIDTH = 900
LABEL_WIDTH = 220
ROW_HEIGHT = 22
# Members of a folded group drawn as thin stripes, at most this many.
MAX_STRIPES = 400


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    state: str
    title: str


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    y: int
    bars: list[Bar]
    href: str  # the query that opens this task or group on the run page
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class Timeline:
    rows: list[Row]
    width: int
    height: int
    seconds: float  # the span the chart covers


def _span(runs: Sequence[TaskRun], now: datetime) -> tuple[datetime, datetime] | None:
    starts = [r.start_time for r in runs if r.start_time is not None]
    # An attempt of an earlier execution started before the task run's latest start.
    starts += [a.start_time for r in runs for a in r.attempt_log if a.start_time is not None]
    if not starts:
        return None
    ends = [r.end_time or now for r in runs if r.start_time is not None]
    return min(starts), max(ends)


def build_timeline(graph: Graph, task_runs: Sequence[TaskRun], now: datetime) -> Timeline:
    """Rows in the graph's node order; times scaled to the run's whole span."""
    span = _span(task_runs, now)
    if span is None:
        return Timeline(rows=[], width=LABEL_WIDTH + WIDTH, height=0, seconds=0.0)
    start, end = span
    total = max((end - start).total_seconds(), 1e-3)
    by_id = {r.id: r for r in task_runs}

    def bar(run: TaskRun, label: str) -> Bar | None:
        if run.start_time is None:
            return None
        finish = run.end_time or now
        x = LABEL_WIDTH + (run.start_time - start).total_seconds() / total * WIDTH
        width = max((finish - run.start_time).total_seconds() / total * WIDTH, 1.0)
        seconds = (finish - run.start_time).total_seconds()
        tries = f", {run.attempts} attempts" if run.attempts > 1 else ""
        return Bar(x, width, run.state.value, f"{label}: {run.state.value}, {seconds:.3f}s{tries}")

    def attempt_bar(attempt: AttemptInfo, label: str) -> Bar | None:
        if attempt.start_time is None:
            return None
        finish = attempt.end_time or now
        x = LABEL_WIDTH + (attempt.start_time - start).total_seconds() / total * WIDTH
        seconds = (finish - attempt.start_time).total_seconds()
        width = max(seconds / total * WIDTH, 1.0)
        why = f" ({attempt.error.type}: {attempt.error.message})" if attempt.error else ""
        title = f"{label} attempt {attempt.attempt}: {attempt.state}, {seconds:.3f}s{why}"
        return Bar(x, width, attempt.state, title)

    rows: list[Row] = []
    for node in graph.nodes:
        y = len(rows) * ROW_HEIGHT
        if node.group is not None:
            members = graph.groups[node.group]
            step = max(len(members) // MAX_STRIPES, 1)
            bars = [b for r in members[::step] if (b := bar(r, r.call_key)) is not None]
            rows.append(
                Row(
                    label=node.label,
                    y=y,
                    bars=bars,
                    href=f"?group={quote(node.group)}",
                    attempts=max((r.attempts for r in members), default=1),
                )
            )
        elif node.task_run_id is not None:
            run = by_id[node.task_run_id]
            if run.attempt_log:
                bars = [b for a in run.attempt_log if (b := attempt_bar(a, run.call_key))]
            else:
                one = bar(run, run.call_key)
                bars = [one] if one else []
            rows.append(
                Row(
                    label=node.label,
                    y=y,
                    bars=bars,
                    href=f"?task={run.id}",
                    attempts=run.attempts,
                )
            )
    return Timeline(
        rows=rows, width=LABEL_WIDTH + WIDTH, height=len(rows) * ROW_HEIGHT, seconds=total
    )
