"""``legato fork RUN --from KEY``: run a flow run again from one of its steps."""

from __future__ import annotations

import click

from legato.cli.common import debug_option, emit_json, get_client
from legato.cli.execute import _install_prefect_shim, execute
from legato.client.views import flow_run_to_dict


@click.command("fork")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--from",
    "from_key",
    required=True,
    metavar="KEY",
    help="The call key of the step to run again, e.g. 'llm[2]' (see `legato show RUN`).",
)
@click.option(
    "--queue",
    is_flag=True,
    help="Queue the fork for a worker of the run's work queue (a run from a deployment) "
    "instead of running it in this process.",
)
@click.option(
    "--on-changed-args",
    type=click.Choice(["error", "replay", "rerun"]),
    default="error",
    show_default=True,
    help="What replay does with a copied step whose arguments differ now from the "
    "recorded ones: stop with an error, keep the recorded result, or run it again.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the run.")
@debug_option
@click.pass_context
def fork_cmd(
    ctx: click.Context,
    run_id: str,
    from_key: str,
    queue: bool,
    on_changed_args: str,
    as_json: bool,
) -> None:
    """Start a new run of RUN's flow, with its parameters, that replays the steps RUN
    recorded before step KEY and runs KEY and everything after it again, with the
    code, prompts and models of now. Model calls replayed are not asked again (their
    tries are copied, marked as copied from RUN). The fork is tagged
    forked-from:RUN. Output and exit codes are those of `legato run`.

    \b
    Examples:
      legato fork 3f2a9c1e --from 'llm[2]'
      legato fork 3f2a9c1e --from 'classify[0]' --json
    """
    client = get_client(ctx)
    _install_prefect_shim(False)
    fork = client.create_fork(run_id, from_key, queue=queue)
    source = next(t for t in fork.tags if t.startswith("forked-from:")).partition(":")[2]
    if queue:
        if as_json:
            emit_json(flow_run_to_dict(fork))
        else:
            click.echo(
                f"flow run {fork.id} forks {source} from '{from_key}'; queued on "
                f"'{fork.work_queue}' for a worker"
            )
        return
    if not as_json:
        click.echo(f"flow run {fork.id} forks {source} from '{from_key}'")
    execute(
        ctx,
        client,
        lambda observer: client.start_fork(
            fork.id, observer=observer, on_changed_args=on_changed_args
        ),
        as_json=as_json,
    )
