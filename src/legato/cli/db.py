"""``legato db status | upgrade | prune | forget-transaction``: the store itself."""

from __future__ import annotations

from datetime import timedelta

import click

from legato import settings
from legato.cli.common import debug_option, emit_json, get_client, make_console
from legato.client.views import store_status_to_dict
from legato.states import FINAL_STATES, StateType

_FINAL = sorted(state.value for state in FINAL_STATES)


def parse_age(text: str, option: str = "'--older-than'") -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``; a usage error otherwise."""
    seconds = settings.parse_age(text)
    if seconds is None:
        raise click.BadParameter(
            f"{text!r} is not an age: write a number and a unit, like 90s, 15m, 12h, 30d or 2w",
            param_hint=option,
        )
    return timedelta(seconds=seconds)


def _age_text(age: timedelta) -> str:
    seconds = age.total_seconds()
    for unit in ("d", "h", "m"):
        if (
            seconds >= settings.AGE_UNIT_SECONDS[unit]
            and seconds % settings.AGE_UNIT_SECONDS[unit] == 0
        ):
            return f"{seconds / settings.AGE_UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


@click.group("db")
def db_group() -> None:
    """The state store: its status, its schema, and pruning old runs.

    The store is $LEGATO_HOME/legato.db, or wherever LEGATO_DATABASE_URL points.
    """


@db_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@debug_option
@click.pass_context
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """Backend, location (password masked), schema version, size and row counts."""
    status = get_client(ctx).store_status()
    if as_json:
        emit_json(store_status_to_dict(status))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("backend", status.backend)
    table.add_row("url", status.url)
    behind = "" if status.schema_version == status.latest_version else " (run `legato db upgrade`)"
    table.add_row("schema", f"version {status.schema_version} of {status.latest_version}{behind}")
    table.add_row("size", _size(status.size_bytes))
    for name, count in status.row_counts.items():
        table.add_row(name.replace("_", " "), f"{count:,}")
    make_console().print(table)


@db_group.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@debug_option
@click.pass_context
def upgrade_cmd(ctx: click.Context, as_json: bool) -> None:
    """Bring the store's schema to this legato's version (opening it does this too)."""
    status = get_client(ctx).store_status()
    applied = list(status.migrated_on_open)
    if as_json:
        emit_json({"url": status.url, "schema_version": status.schema_version, "applied": applied})
        return
    if applied:
        click.echo(
            f"{status.url}: schema now at version {status.schema_version} "
            f"(applied {', '.join(str(v) for v in applied)})"
        )
    else:
        click.echo(f"{status.url}: schema already at version {status.schema_version}")


@db_group.command("prune")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="AGE",
    help="Delete runs that ended longer ago than this: 90s, 15m, 12h, 30d, 2w.",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(_FINAL, case_sensitive=False),
    help="Only runs that ended in this state; repeat for several. Default: all of them.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=200,
    show_default=True,
    help="Top-level runs deleted per transaction; live writers wait at most one batch.",
)
@click.option(
    "--events-older-than",
    "events_older_than",
    default=None,
    metavar="AGE",
    help="Also delete events received longer ago than this. Default: LEGATO_EVENT_RETENTION "
    "(7d). A dry run leaves events alone.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@debug_option
@click.pass_context
def prune_cmd(
    ctx: click.Context,
    older_than: str,
    states: tuple[str, ...],
    batch_size: int,
    events_older_than: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete finished runs that ended long ago, with everything they own.

    A top-level run goes with its subflow runs, task runs, logs, inputs and
    stored results. Running, paused and scheduled runs are never deleted.

    \b
    Examples:
      legato db prune --older-than 30d
      legato db prune --older-than 7d --state completed --dry-run
    """
    age = parse_age(older_than)
    if events_older_than is None:
        from legato.settings import event_retention_seconds

        events_age = timedelta(seconds=event_retention_seconds())
    else:
        events_age = parse_age(events_older_than, "'--events-older-than'")
    result = get_client(ctx).prune_runs(
        age,
        states=[StateType(s.lower()) for s in states],
        batch_size=batch_size,
        dry_run=dry_run,
    )
    events = None if dry_run else get_client(ctx).prune_events(events_age)
    if as_json:
        counts = {
            "dry_run": dry_run,
            "flow_runs": result.flow_runs,
            "task_runs": result.task_runs,
            "logs": result.logs,
        }
        emit_json(counts if events is None else {**counts, "events": events})
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {result.flow_runs:,} flow run(s), {result.task_runs:,} task run(s) and "
        f"{result.logs:,} log line(s) that ended more than {older_than} ago"
    )
    if events is not None:
        click.echo(f"deleted {events:,} event(s) received more than {_age_text(events_age)} ago")


@db_group.command("forget-transaction")
@click.argument("key")
@debug_option
@click.pass_context
def forget_transaction_cmd(ctx: click.Context, key: str) -> None:
    """Delete the record of the keyed transaction KEY: its next run runs the block again.

    `legato db prune` keeps these records (they make a keyed block run once).
    """
    if not get_client(ctx).forget_transaction(key):
        raise click.ClickException(
            f"no keyed transaction {key!r} has committed; nothing to forget "
            f"(keys are compared exactly)"
        )
    click.echo(f"forgot keyed transaction {key!r}: its next run runs the block again")
