"""``legato limit set | ls | delete``: global concurrency and rate limits for tasks."""

from __future__ import annotations

import click

from legato.cli.common import debug_option, emit_json, get_client, make_console
from legato.client.checks import INT32_MAX, MAX_PER_SECONDS
from legato.records import Limit


def _limit_dict(limit: Limit) -> dict[str, object]:
    return {
        "name": limit.name,
        "slots": limit.slots,
        "per_seconds": limit.per_seconds,
        "active": limit.active,
        "kind": "rate" if limit.per_seconds is not None else "concurrency",
    }


@click.group("limit")
def limit_group() -> None:
    """Global limits: a task tagged with a limit's name holds one of its slots while it
    runs, across every process and machine using this store.

    \b
    Examples:
      legato limit set db 2              # at most 2 tasks tagged "db" at once
      legato limit set api 10 --per 60   # at most 10 starts of "api" tasks a minute
      legato limit ls
    """


@limit_group.command("set")
@click.argument("name")
@click.argument("slots", type=click.IntRange(0, INT32_MAX))
@click.option(
    "--per",
    "per_seconds",
    type=click.FloatRange(min=0, min_open=True, max=MAX_PER_SECONDS),
    default=None,
    metavar="SECONDS",
    help="Make it a rate limit: at most SLOTS task starts in any window this long.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the limit as JSON.")
@debug_option
@click.pass_context
def set_cmd(
    ctx: click.Context, name: str, slots: int, per_seconds: float | None, as_json: bool
) -> None:
    """Create or change the limit NAME with SLOTS slots (0 holds every such task back)."""
    limit = get_client(ctx).set_limit(name, slots, per_seconds=per_seconds)
    if as_json:
        emit_json(_limit_dict(limit))
    elif limit.per_seconds is None:
        click.echo(f"limit '{name}': at most {slots} task(s) tagged '{name}' at once")
    else:
        click.echo(f"limit '{name}': at most {slots} start(s) per {limit.per_seconds:g}s")


@limit_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@debug_option
@click.pass_context
def ls_cmd(ctx: click.Context, as_json: bool) -> None:
    """List limits with the slots in use now."""
    limits = get_client(ctx).limits()
    if as_json:
        emit_json([_limit_dict(limit) for limit in limits])
        return
    if not limits:
        click.echo("no limits; create one with `legato limit set NAME N`")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("name", "slots", "in use", "kind"):
        table.add_column(column)
    for limit in limits:
        kind = "concurrency" if limit.per_seconds is None else f"rate per {limit.per_seconds:g}s"
        table.add_row(limit.name, str(limit.slots), str(limit.active), kind)
    make_console().print(table)


@limit_group.command("delete")
@click.argument("name")
@debug_option
@click.pass_context
def delete_cmd(ctx: click.Context, name: str) -> None:
    """Delete the limit NAME (its tasks run unlimited from then on)."""
    get_client(ctx).delete_limit(name)
    click.echo(f"deleted limit '{name}'")
