"""``legato event emit`` and ``legato events``: put events in, read and follow them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import timedelta

import click

from legato._event_records import RESOURCE_ID, RESOURCE_ROLE, Event
from legato.cli.common import debug_option, get_client, parse_json_object
from legato.client.views import shorten
from legato.records import utcnow

_EXAMPLE = f"{RESOURCE_ID}=warehouse.table.orders"
NAME_WIDTH = 32
RESOURCE_WIDTH = 36
PAYLOAD_WIDTH = 60


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(
            f"expected KEY=VALUE like {_EXAMPLE}, got {text!r}", param_hint=option
        )
    return key.strip(), value


def _labels(pairs: Iterable[str], option: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for text in pairs:
        key, value = _pair(text, option)
        if key in labels:
            raise click.BadParameter(f"label {key!r} is given twice", param_hint=option)
        labels[key] = value
    return labels


def _related(text: str) -> dict[str, str]:
    role, sep, rest = text.partition(":")
    if not sep or not role.strip() or not rest.strip():
        raise click.BadParameter(
            f"expected ROLE:KEY=VALUE[,KEY=VALUE...] like upstream:{_EXAMPLE}, got {text!r}",
            param_hint="'--related'",
        )
    labels = _labels(rest.split(","), "'--related'")
    labels[RESOURCE_ROLE] = role.strip()
    return labels


def _safe(text: str) -> str:
    """``text`` with control characters shown escaped: user data cannot drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def event_line(event: Event) -> str:
    """One event as a line: time, name, resource, a short payload."""
    payload = json.dumps(dict(event.payload), ensure_ascii=False) if event.payload else ""
    return (
        f"{event.occurred.strftime('%Y-%m-%d %H:%M:%S')}  "
        f"{_safe(event.event):<{NAME_WIDTH}}  "
        f"{_safe(event.resource_id):<{RESOURCE_WIDTH}}  "
        f"{_safe(shorten(payload, PAYLOAD_WIDTH))}"
    ).rstrip()


def _header() -> str:
    return f"{'TIME':<19}  {'EVENT':<{NAME_WIDTH}}  {'RESOURCE':<{RESOURCE_WIDTH}}  PAYLOAD"


def _print(event: Event, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(event.to_dict(), ensure_ascii=False))
    else:
        click.echo(event_line(event))
    sys.stdout.flush()


@click.group("event")
def event_group() -> None:
    """Emit an event (`legato events` lists and follows them).

    \b
    Examples:
      legato event emit warehouse.table.refreshed \\
          --resource legato.resource.id=warehouse.table.orders --payload '{"rows": 1200}'
    """


@event_group.command("emit")
@click.argument("name")
@click.option(
    "--resource",
    "resource",
    multiple=True,
    metavar="KEY=VALUE",
    help=f"A label of the event's resource (repeatable); {RESOURCE_ID} is required.",
)
@click.option(
    "--related",
    "related",
    multiple=True,
    metavar="ROLE:KEY=VALUE,...",
    help="A related resource in a role, e.g. upstream:legato.resource.id=x (repeatable).",
)
@click.option("--payload", default=None, metavar="JSON", help="The payload: a JSON object.")
@click.option(
    "--id", "event_id", default=None, help="The event's id (emitting it again stores nothing)."
)
@debug_option
@click.pass_context
def emit_cmd(
    ctx: click.Context,
    name: str,
    resource: tuple[str, ...],
    related: tuple[str, ...],
    payload: str | None,
    event_id: str | None,
) -> None:
    """Emit event NAME about a resource and print its id."""
    labels = _labels(resource, "'--resource'")
    others = [_related(text) for text in related]
    data = parse_json_object(payload, "'--payload'")
    click.echo(get_client(ctx).emit_event(name, labels, others, data, id=event_id))


@click.command("events")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="PATTERN",
    help="Only this event name, or names starting with a prefix ending in * (repeatable).",
)
@click.option(
    "--resource",
    default=None,
    metavar="ID",
    help="Only events about this resource id (their own or a related resource).",
)
@click.option(
    "--since", default=None, metavar="AGE", help="Only events of the last 90s, 15m, 12h, 2d..."
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=20,
    show_default=True,
    help="How many of the latest events to show (before following).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@debug_option
@click.pass_context
def events_cmd(
    ctx: click.Context,
    follow: bool,
    names: tuple[str, ...],
    resource: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The latest events, oldest first; with --follow, then each new one as it is stored.

    \b
    Examples:
      legato events
      legato events --name 'legato.flow-run.*' --since 1h
      legato events --resource legato.flow-run.3f2a... --json
      legato events --follow --name legato.flow-run.Failed
    """
    from legato.settings import parse_age

    client = get_client(ctx)
    if resource is not None and resource.startswith(f"{RESOURCE_ID}="):
        resource = resource[len(RESOURCE_ID) + 1 :]
    after = None
    if since is not None:
        seconds = parse_age(since)
        if seconds is None:
            raise click.BadParameter(
                f"{since!r} is not an age: write a number and a unit, like 90s, 15m, 12h or 2d",
                param_hint="'--since'",
            )
        after = utcnow() - timedelta(seconds=seconds)
    # The cursor first: an event stored while the list is read is followed, not lost.
    cursor = client.events_cursor() if follow else None
    latest = client.list_events(names=names, resource_id=resource, since=after, limit=limit)
    if not as_json and (latest or follow):
        click.echo(_header())
    elif not latest and not follow and not as_json:
        click.echo("no events; emit one with `legato event emit NAME --resource KEY=VALUE`")
    for event in reversed(latest):
        _print(event, as_json)
    if not follow:
        return
    shown = {event.id for event in latest}
    try:
        for event in client.follow_events(names=names, resource_id=resource, after=cursor):
            if event.id not in shown:
                _print(event, as_json)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a follow ends
