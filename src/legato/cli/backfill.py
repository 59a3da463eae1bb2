"""``legato backfill``: queue the runs of a deployment's past (or future) schedule slots."""

from __future__ import annotations

import click

from legato.cli.common import debug_option, emit_json, get_client, parse_time
from legato.client.checks import INT32_MAX
from legato.client.views import flow_run_to_dict


@click.command("backfill")
@click.argument("name")
@click.option("--start", "start_text", required=True, metavar="TIME", help="First slot time.")
@click.option("--end", "end_text", default="now", show_default=True, metavar="TIME")
@click.option(
    "--concurrency",
    type=click.IntRange(1, INT32_MAX),
    default=None,
    help="Run at most this many of the backfill's runs at once (default: the "
    "deployment's concurrency limit, if any).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON list.")
@debug_option
@click.pass_context
def backfill_cmd(
    ctx: click.Context,
    name: str,
    start_text: str,
    end_text: str,
    concurrency: int | None,
    as_json: bool,
) -> None:
    """Queue a run for every slot of deployment NAME's schedules in [--start, --end].

    A slot that already has a run (the scheduler made it, or an earlier
    backfill did) is not run again. Workers execute the runs, oldest slot
    first within equal priority.

    \b
    Examples:
      legato backfill nightly --start 2026-11-01 --end 2026-11-07
      legato backfill hourly --start -2d --concurrency 4 --json
    """
    start = parse_time(start_text, "'--start'")
    end = parse_time(end_text, "'--end'")
    client = get_client(ctx)
    queued = client.backfill(name, start, end, concurrency=concurrency)
    if as_json:
        emit_json([dict(flow_run_to_dict(run), created=created) for run, created in queued])
        return
    created = sum(1 for _, new in queued if new)
    existing = len(queued) - created
    click.echo(
        f"queued {created} run(s) of '{name}' for slots from {start.isoformat()} to "
        f"{end.isoformat()}" + (f"; {existing} slot(s) already had a run" if existing else "")
    )
