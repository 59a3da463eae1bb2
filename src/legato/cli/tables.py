"""rich renderables: the runs table, the run tree, and the end-of-run summary.

Only imported by commands that draw with rich, after they decided to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from legato.cli.render import (
    STATE_STYLES,
    Line,
    error_line,
    format_duration,
    format_inputs,
    format_parameters,
    format_time,
    input_fields,
    model_name,
    resume_command,
    short_id,
)
from legato.client.views import duration_seconds
from legato.records import FlowRun, TaskRun
from legato.states import StateType

# Subflows nest; a runaway chain must not make `show` draw forever.
MAX_TREE_DEPTH = 8


def state_text(state: StateType) -> Text:
    return Text(state.value, style=STATE_STYLES.get(state, ""))


def runs_table(runs: Sequence[FlowRun]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    # Fixed widths for what must stay readable; names and parameters give way.
    table.add_column("ID", no_wrap=True, min_width=8)
    flow_width = min(max((len(run.flow_name) for run in runs), default=4), 20)
    table.add_column("FLOW", no_wrap=True, overflow="ellipsis", min_width=flow_width)
    table.add_column("NAME", no_wrap=True, overflow="ellipsis", max_width=30)
    table.add_column("STATE", no_wrap=True, min_width=9)
    table.add_column("STARTED (UTC)", no_wrap=True, min_width=20)
    table.add_column("DURATION", justify="right", no_wrap=True, min_width=8)
    table.add_column("PARAMETERS", no_wrap=True, overflow="ellipsis", max_width=40)
    for run in runs:
        table.add_row(
            short_id(run.id),
            run.flow_name,
            run.name,
            state_text(run.state),
            format_time(run.start_time or run.created),
            format_duration(duration_seconds(run.start_time, run.end_time)),
            format_parameters(run.parameters),
        )
    return table


def summary_table(lines: Sequence[Line]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for line in lines:
        grid.add_row(line.label, Text(line.text, style=line.style))
    return grid


@dataclass
class RunNode:
    """A flow run with what `show` draws under it: its task runs and child runs."""

    run: FlowRun
    tasks: list[TaskRun] = field(default_factory=list)
    children: list[RunNode] = field(default_factory=list)


def _task_label(tr: TaskRun) -> Text:
    label = Text()
    label.append(tr.call_key, style="bold")
    if tr.name != tr.call_key:
        label.append(f"  {tr.name}")
    label.append("  ")
    label.append_text(state_text(tr.state))
    label.append(f"  attempts {tr.attempts}", style="dim")
    if tr.cached:
        label.append("  cached", style="cyan")
    if tr.rolled_back:
        label.append("  rolled back", style="yellow")
    label.append(f"  {format_duration(tr.duration)}", style="dim")
    return label


def _run_label(run: FlowRun, *, root: bool) -> Text:
    label = Text()
    label.append("flow run " if root else "subflow ", style="bold")
    label.append(run.id if root else short_id(run.id), style="bold")
    label.append(f"  {run.flow_name} / {run.name}  ")
    label.append_text(state_text(run.state))
    label.append(f"  attempts {run.attempts}", style="dim")
    label.append(
        f"  {format_duration(duration_seconds(run.start_time, run.end_time))}", style="dim"
    )
    return label


def _add_run_details(tree: Tree, run: FlowRun, result: str | None) -> None:
    if run.parameters:
        tree.add(Text(f"parameters: {format_parameters(run.parameters, 200)}", style="dim"))
    tree.add(
        Text(
            f"started {format_time(run.start_time)}  ended {format_time(run.end_time)}",
            style="dim",
        )
    )
    if run.error is not None:
        tree.add(Text(f"error: {error_line(run.error.type, run.error.message)}", style="red"))
    if result is not None:
        tree.add(Text(f"result: {result}"))
    if run.state is StateType.PAUSED:
        pause = run.pause
        if pause is not None:
            waits = f", waiting for {model_name(pause)}" if pause.input_model else ""
            tree.add(Text(f"paused at {pause.key}{waits}", style="magenta"))
            if pause.input_model and pause.input_schema:
                tree.add(Text(f"input: {input_fields(pause)}"))
        tree.add(Text(f"resume with: {resume_command(run.id, pause)}", style="bold"))


def _order_key(item: TaskRun | RunNode) -> tuple[int, float]:
    start = item.start_time if isinstance(item, TaskRun) else item.run.start_time
    return (1, 0.0) if start is None else (0, start.timestamp())


def _add_body(tree: Tree, node: RunNode, depth: int) -> None:
    # Tasks and subflows interleaved by start time, the order they ran in; the
    # sort is stable, so never-started items keep the store's order at the end.
    items: list[TaskRun | RunNode] = sorted([*node.tasks, *node.children], key=_order_key)
    for item in items:
        if isinstance(item, TaskRun):
            branch = tree.add(_task_label(item))
            if item.error is not None:
                branch.add(
                    Text(f"error: {error_line(item.error.type, item.error.message)}", style="red")
                )
            if item.inputs:  # always for a failed task; for others with record_inputs
                branch.add(Text(f"inputs: {format_inputs(item.inputs)}", style="dim"))
        else:
            child = tree.add(_run_label(item.run, root=False))
            if item.run.error is not None:
                child.add(
                    Text(
                        f"error: {error_line(item.run.error.type, item.run.error.message)}",
                        style="red",
                    )
                )
            if depth + 1 >= MAX_TREE_DEPTH:
                child.add(Text(f"... (deeper runs: legato show {item.run.id})", style="dim"))
            else:
                _add_body(child, item, depth + 1)


def run_tree(node: RunNode, *, result: str | None = None) -> Tree:
    """The run, its details, and its task runs and subflow runs, nested."""
    tree = Tree(_run_label(node.run, root=True))
    _add_run_details(tree, node.run, result)
    _add_body(tree, node, 0)
    return tree


def load_tree(
    run: FlowRun,
    task_runs: Callable[[str], list[TaskRun]],
    child_runs: Callable[[str], list[FlowRun]],
    depth: int = 0,
) -> RunNode:
    """Fetch a run's task runs and (recursively) its subflow runs."""
    node = RunNode(run, tasks=task_runs(run.id))
    if depth + 1 < MAX_TREE_DEPTH:
        node.children = [
            load_tree(child, task_runs, child_runs, depth + 1) for child in child_runs(run.id)
        ]
    return node


__all__ = ["RunNode", "load_tree", "run_tree", "runs_table", "summary_table"]
