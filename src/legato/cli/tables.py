"""rich renderables: the runs table, the run tree, and the end-of-run summary.

Only imported by commands that draw with rich, after they decided to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rich.console import Console, RenderableType
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
from legato.client.llm_views import (
    CallView,
    Totals,
    format_cost,
    format_tokens,
    task_totals,
    totals,
)
from legato.client.views import duration_seconds
from legato.records import FlowRun, TaskRun
from legato.states import StateType

# Subflows nest; a runaway chain must not make `show` draw forever.
MAX_TREE_DEPTH = 8


def state_text(state: StateType) -> Text:
    return Text(state.value, style=STATE_STYLES.get(state, ""))


# `legato runs` columns: (header, widest it grows to, narrowest it shrinks to).
# None: the column is as wide as its widest value and never shrinks, because a cut
# id, state, time or duration reads as another value; the others give way and end
# in "…" when cut.
_RUN_COLUMNS: tuple[tuple[str, int | None, int], ...] = (
    ("ID", None, 0),
    ("FLOW", 20, 10),
    ("NAME", 30, 10),
    ("STATE", None, 0),
    ("STARTED (UTC)", None, 0),
    ("DURATION", None, 0),
    ("PARAMETERS", 80, 10),
)
# When even the narrowest widths do not fit, these columns go, in this order: a
# run's default name repeats its flow and id, and `legato show` has everything.
_DROP_ORDER = ("NAME", "PARAMETERS", "DURATION", "STARTED (UTC)")
# Shown after the others only when a listed run made model calls.
_COST_COLUMN: tuple[str, int | None, int] = ("COST", None, 0)
PARAMETERS_LIMIT = 200  # characters of parameters text before the column cuts it
_GAP = 2  # spaces between columns (rich's padding of 1 on each side)


def _fit_widths(natural: dict[str, int], width: int | None) -> dict[str, int]:
    """Column widths that fit ``width``: fixed columns keep theirs, the others share
    what is left (narrowest first, each up to its natural width), and whole
    columns are dropped before any is cut below its minimum."""
    limits = {header: (grow, shrink) for header, grow, shrink in (*_RUN_COLUMNS, _COST_COLUMN)}
    shown = list(natural)
    if width is None:
        return natural
    for drop in (None, *_DROP_ORDER):
        if drop is not None:
            shown.remove(drop)
        fixed = sum(natural[h] for h in shown if limits[h][0] is None)
        flexible = sorted((h for h in shown if limits[h][0] is not None), key=natural.__getitem__)
        room = width - fixed - _GAP * (len(shown) - 1)
        if room >= sum(min(natural[h], limits[h][1]) for h in flexible):
            break
    widths = {h: natural[h] for h in shown}
    for index, header in enumerate(flexible):
        share = room // (len(flexible) - index)
        widths[header] = min(natural[header], max(share, limits[header][1]))
        room -= widths[header]
    return widths


def runs_table(
    runs: Sequence[FlowRun], width: int | None = None, *, costs: Mapping[str, float] | None = None
) -> Table:
    """The runs as a table that fits ``width`` columns (any width when None); with
    ``costs`` (USD by run id), a cost column ("-" for runs without model calls)."""
    columns = _RUN_COLUMNS if costs is None else (*_RUN_COLUMNS, _COST_COLUMN)
    rows = [
        (
            short_id(run.id),
            run.flow_name,
            run.name,
            run.state.value,
            format_time(run.start_time or run.created),
            format_duration(duration_seconds(run.start_time, run.end_time)),
            # Cut at the end by the column, never in the middle as well.
            format_parameters(run.parameters, PARAMETERS_LIMIT),
            *(() if costs is None else (format_cost(costs.get(run.id)),)),
        )
        for run in runs
    ]
    natural: dict[str, int] = {}
    for index, (header, grow, _) in enumerate(columns):
        widest = max([len(header), *(len(row[index]) for row in rows)])
        natural[header] = widest if grow is None else min(widest, grow)
    widths = _fit_widths(natural, width)
    table = Table(box=None, header_style="bold", pad_edge=False)
    shown = [i for i, (header, _, _) in enumerate(columns) if header in widths]
    for index in shown:
        header = columns[index][0]
        table.add_column(
            header,
            justify="right" if header in ("DURATION", "COST") else "left",
            no_wrap=True,
            overflow="ellipsis",
            width=widths[header],
        )
    for run, row in zip(runs, rows, strict=True):
        cells: list[str | Text] = [row[i] for i in shown]
        if "STATE" in widths:
            cells[[columns[i][0] for i in shown].index("STATE")] = state_text(run.state)
        table.add_row(*cells)
    return table


def llm_calls_table(calls: Sequence[CallView]) -> Table:
    """`legato show`'s model calls: one row per call key, then per-task and run totals."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for header in ("CALL", "MODEL", "TRIES", "IN", "OUT", "COST", "PROMPT", "OUTCOME"):
        right = header in ("TRIES", "IN", "OUT", "COST")
        table.add_column(header, justify="right" if right else "left", overflow="fold")
    for view in calls:
        usage = view.usage
        table.add_row(
            view.key,
            view.model,
            str(len(view.tries)),
            format_tokens(usage.input_tokens),
            format_tokens(usage.output_tokens),
            format_cost(view.cost_usd),
            view.prompt or "-",
            view.outcome.value + (" (copied)" if view.copied else ""),
        )
    for task, total in task_totals(calls):
        table.add_row(*_total_row(f"{task} total", total))
    table.add_row(*_total_row("total", totals(calls)), style="bold")
    return table


def _total_row(label: str, total: Totals) -> tuple[str, ...]:
    return (
        label,
        f"{total.calls} call{'s' if total.calls != 1 else ''}",
        str(total.tries),
        format_tokens(total.usage.input_tokens),
        format_tokens(total.usage.output_tokens),
        format_cost(total.cost_usd),
        "",
        "",
    )


# Trailing blanks of a line, with any style codes among them (kept, in order).
_TRAILING_BLANKS = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$", re.MULTILINE)


def _keep_codes(match: re.Match[str]) -> str:
    return "".join(re.findall(r"\x1b\[[0-9;]*m", match.group(0)))


def print_trimmed(console: Console, renderable: RenderableType) -> None:
    """Print as ``console.print`` does, without the blanks rich pads lines with,
    so that piped output has no trailing spaces."""
    with console.capture() as capture:
        console.print(renderable)
    console.file.write(_TRAILING_BLANKS.sub(_keep_codes, capture.get()))
    console.file.flush()


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
    if tr.host is not None:  # a remote task runner ran the body
        label.append(f"  on {tr.host}", style="dim")
    return label


def _run_label(run: FlowRun, *, root: bool) -> Text:
    # The root's line holds the full id, so its flow and name go on the next line:
    # the header fits 80 columns, and it is never wrapped (cut with "…" if need be).
    label = Text(no_wrap=True, overflow="ellipsis") if root else Text()
    label.append("flow run " if root else "subflow ", style="bold")
    label.append(run.id if root else short_id(run.id), style="bold")
    label.append("  " if root else f"  {run.flow_name} / {run.name}  ")
    label.append_text(state_text(run.state))
    label.append(f"  attempts {run.attempts}", style="dim")
    label.append(
        f"  {format_duration(duration_seconds(run.start_time, run.end_time))}", style="dim"
    )
    return label


def _add_run_details(tree: Tree, run: FlowRun, result: str | None) -> None:
    tree.add(Text(f"flow: {run.flow_name} / {run.name}"))
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


__all__ = ["RunNode", "load_tree", "print_trimmed", "run_tree", "runs_table", "summary_table"]
