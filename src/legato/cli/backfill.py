"""``legato backfill``: queue the runs of a deployment's past (or future) schedule slots."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import click

from legato.cli.common import debug_option, emit_json, get_client
from legato.client.views import flow_run_to_dict

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601 (no zone = UTC), ``now``, or a time ago like ``-3d``, ``-12h``."""
    from datetime import timedelta

    value = text.strip()
    if value == "now":
        return datetime.now(UTC)
    relative = _RELATIVE.match(value)
    if relative:
        seconds = float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time: use ISO 8601 like 2026-11-01T00:00 (UTC unless a "
            f"zone is given), 'now', or a time ago like -3d, -12h, -30m",
            param_hint=option,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command("backfill")
@click.argument("name")
@click.option("--start", "start_text", required=True, metavar="TIME", help="First slot time.")
@click.option("--end", "end_text", default="now", show_default=True, metavar="TIME")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
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
