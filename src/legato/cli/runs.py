"""``legato runs``, ``show``, ``logs`` and ``cancel``: look at runs and stop them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from legato.cli.common import (
    debug_option,
    emit_json,
    get_client,
    json_result,
    make_console,
)
from legato.cli.render import format_duration, log_line, short_id
from legato.client.checks import INT32_MAX
from legato.client.llm_views import group_calls, run_totals, total_dict
from legato.client.views import (
    duration_seconds,
    flow_run_to_dict,
    log_to_dict,
    shorten,
    task_run_to_dict,
)
from legato.states import StateType

if TYPE_CHECKING:
    from legato.cli.tables import RunNode
    from legato.client import Client
    from legato.records import FlowRun

_STATE_NAMES = [s.value for s in StateType]


@click.command("runs")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of runs.")
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=INT32_MAX),
    default=20,
    show_default=True,
    help="Show at most this many runs.",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(_STATE_NAMES, case_sensitive=False),
    help="Only runs in this state; repeat for several.",
)
@click.option("--flow", "flow_name", metavar="NAME", help="Only runs of the flow with this name.")
@click.option("--deployment", metavar="NAME", help="Only runs of this deployment.")
@click.option("--tag", metavar="TAG", help="Only runs carrying this tag.")
@debug_option
@click.pass_context
def runs_cmd(
    ctx: click.Context,
    as_json: bool,
    limit: int,
    states: tuple[str, ...],
    flow_name: str | None,
    deployment: str | None,
    tag: str | None,
) -> None:
    """List flow runs, newest first.

    Runs whose process died while running are shown as crashed.

    \b
    Examples:
      legato runs
      legato runs --state failed --state crashed --flow etl --limit 5
      legato runs --tag nightly
      legato runs --json | jq '.[0].id'
    """
    client = get_client(ctx)
    runs = client.list_runs(
        limit=limit,
        states=[StateType(s.lower()) for s in states] or None,
        flow_name=flow_name,
        deployment=deployment,
        tag=tag,
    )
    llm = run_totals(client.store, [run.id for run in runs])
    if as_json:
        emit_json([{**flow_run_to_dict(run), "llm": total_dict(llm.get(run.id))} for run in runs])
        return
    if not runs:
        click.echo("no flow runs" + (" match" if states or flow_name or deployment else " yet"))
        return
    from legato.cli.tables import print_trimmed, runs_table

    console = make_console()
    costs = {run_id: total.cost_usd for run_id, total in llm.items()} if llm else None
    print_trimmed(console, runs_table(runs, console.width, costs=costs))


def _load(client: Client, run: FlowRun) -> RunNode:
    from legato.cli.tables import load_tree

    return load_tree(run, client.task_runs, client.child_runs)


def _stored_result(client: Client, run: FlowRun) -> tuple[bool, Any]:
    if run.state is not StateType.COMPLETED or not run.has_result:
        return False, None
    try:
        return json_result(client.run_result(run.id))
    # Decoding a result may import the user's modules or unpickle their objects,
    # and anything can fail there; `show` must still show the run.
    except Exception:
        return False, None


@click.command("show")
@click.argument("run_id", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print the run and its task runs as JSON.")
@debug_option
@click.pass_context
def show_cmd(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show a run with its task runs and subflow runs as a tree.

    Each task run shows its call key, name, state, attempts, whether it came
    from the cache, its duration and error; a failed task also shows the inputs
    it received (shortened). The artifacts the run published follow, one line
    each. RUN is a run id or any unambiguous prefix of one.

    \b
    Examples:
      legato show 3f2a9c1e
      legato show 3f2a --json
    """
    client = get_client(ctx)
    run = client.resolve_run(run_id)
    if as_json:
        data = flow_run_to_dict(run, tracebacks=True)
        data["tasks"] = [task_run_to_dict(tr, tracebacks=True) for tr in client.task_runs(run.id)]
        data["children"] = [flow_run_to_dict(child) for child in client.child_runs(run.id)]
        data["artifacts"] = [
            {"id": a.id, "key": a.key, "type": a.type, "description": a.description}
            for a in client.artifacts(run=run.id)
        ]
        has_result, value = _stored_result(client, run)
        if has_result:
            data["result"] = value
        data["llm"] = total_dict(run_totals(client.store, [run.id]).get(run.id))
        emit_json(data)
        return
    import json

    from legato.cli.tables import print_trimmed, run_tree

    has_result, value = _stored_result(client, run)
    result = shorten(json.dumps(value, ensure_ascii=False), 200) if has_result else None
    # Not soft-wrapped: long lines (inputs, errors) fold under their tree branch.
    console = make_console()
    print_trimmed(console, run_tree(_load(client, run), result=result))
    artifacts = client.artifacts(run=run.id)
    if artifacts:
        from legato.cli.artifacts import summary

        click.echo("artifacts:")
        for artifact in artifacts:
            name = artifact.key or artifact.id[:8]
            click.echo(f"  {name}  {shorten(summary(artifact), 100)}".rstrip())
    calls = group_calls(client.store.list_llm_calls(run.id))
    if calls:
        from legato.cli.tables import llm_calls_table

        click.echo("Model calls:")
        print_trimmed(console, llm_calls_table(calls))


@click.command("logs")
@click.argument("run_id", metavar="RUN")
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Keep printing new lines until the run completes, fails or pauses.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05, max=60),
    default=0.5,
    show_default=True,
    hidden=True,
    help="Seconds between polls with --follow.",
)
@debug_option
@click.pass_context
def logs_cmd(ctx: click.Context, run_id: str, follow: bool, as_json: bool, interval: float) -> None:
    """Print the log lines of a run: time (UTC), level, task and message.

    RUN is a run id or any unambiguous prefix of one.

    \b
    Examples:
      legato logs 3f2a9c1e
      legato logs 3f2a --follow
    """
    import json

    client = get_client(ctx)
    run = client.resolve_run(run_id)
    names: dict[str, str] = {}

    def task_name(task_run_id: str | None) -> str | None:
        if task_run_id is None:
            return None
        if task_run_id not in names:  # a task that started since we last looked
            names.update({tr.id: tr.name for tr in client.task_runs(run.id)})
        return names.get(task_run_id)

    last_id = 0

    def drain() -> int:
        nonlocal last_id
        count = 0
        while True:
            batch = client.read_logs(run.id, after_id=last_id)
            for record in batch:
                if as_json:
                    click.echo(json.dumps(log_to_dict(record), ensure_ascii=False))
                else:
                    click.echo(log_line(record, task_name(record.task_run_id)))
                if record.id is not None:
                    last_id = max(last_id, record.id)
            count += len(batch)
            if not batch or batch[-1].id is None:
                return count

    drain()
    while follow:
        current = client.resolve_run(run.id)
        if current.state.is_final or current.state is StateType.PAUSED:
            # Lines written just before the state changed may not be read yet.
            drain()
            break
        if not drain():
            time.sleep(interval)


@click.command("cancel")
@click.argument("run_id", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print the run after the request as JSON.")
@debug_option
@click.pass_context
def cancel_cmd(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Cancel a run.

    A paused, scheduled, pending or crashed run is cancelled at once; a running
    run stops at its next task boundary (a worker's run is stopped by its worker
    if it has not stopped --grace-seconds later). RUN is a run id or any
    unambiguous prefix.

    \b
    Examples:
      legato cancel 3f2a9c1e
    """
    client = get_client(ctx)
    run = client.cancel_run(run_id)
    if as_json:
        emit_json(flow_run_to_dict(run))
        return
    if run.state is StateType.CANCELLED:
        message = f"run {run.id} cancelled"
        took = duration_seconds(run.start_time, run.end_time)
        if took is not None:
            message += f" after {format_duration(took)}"
    elif run.cancel_requested and not run.state.is_final:
        message = (
            f"cancellation of run {run.id} requested; it is {run.state.value} and stops "
            f"at its next task boundary (watch it with: legato logs {short_id(run.id)} -f)"
        )
    else:
        message = f"run {run.id} is {run.state.value}; there was nothing to cancel"
    click.echo(message)


@click.command("suspend")
@click.argument("run_id", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print the run after the request as JSON.")
@debug_option
@click.pass_context
def suspend_cmd(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Pause a running run at its next task boundary, releasing its process.

    The run is recorded as paused (completed tasks are kept) and continues with
    `legato resume RUN`. A run that is not running is left as it is. RUN is a
    run id or any unambiguous prefix.

    \b
    Examples:
      legato suspend 3f2a9c1e
    """
    run, requested = get_client(ctx).suspend_run(run_id)
    if as_json:
        emit_json({**flow_run_to_dict(run), "suspend_requested": requested})
        return
    if requested:
        click.echo(
            f"suspension of run {run.id} requested; it pauses at its next task boundary "
            f"(then continue it with: legato resume {short_id(run.id)})"
        )
    else:
        click.echo(f"run {run.id} is {run.state.value}, not running; nothing to suspend")
