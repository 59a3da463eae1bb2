"""``legato watch PATH``: emit ``legato.file.arrived`` for files that land in a folder."""

from __future__ import annotations

import json

import click

from legato._event_records import Event
from legato.cli.common import debug_option, get_client
from legato.engine.file_arrival import FILE_ARRIVED, FileTrigger


@click.command("watch")
@click.argument("path")
@click.option("--pattern", default="*", show_default=True, help="Only names matching this glob.")
@click.option(
    "--stable-seconds",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Fire once size and modification time stayed the same this long.",
)
@click.option(
    "--include-existing", is_flag=True, help="Fire for files already there when it starts."
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="List the folder every SECONDS instead of watching it; needed for fsspec URLs "
    "(s3://..., gcs://...).",
)
@click.option("--event", "event_name", default=FILE_ARRIVED, show_default=True, help="Event name.")
@click.option("--sha256", is_flag=True, help="Put each file's SHA-256 in the payload.")
@click.option("--json", "as_json", is_flag=True, help="Print each event as a JSON line.")
@debug_option
@click.pass_context
def watch_cmd(
    ctx: click.Context,
    path: str,
    pattern: str,
    stable_seconds: float,
    include_existing: bool,
    poll: float | None,
    event_name: str,
    sha256: bool,
    as_json: bool,
) -> None:
    """Watch folder PATH (or poll an fsspec URL) and emit an event once per new or
    changed file, once it is stable. Files already there do not fire unless
    --include-existing; a restarted watcher does not fire twice for the same file.
    Ctrl-C stops it.

    \b
    Examples:
      legato watch ./incoming --pattern '*.csv'
      legato watch s3://bucket/landing --poll 60 --stable-seconds 30
    """

    def show(event: Event) -> None:
        if as_json:
            click.echo(json.dumps(event.to_dict(), ensure_ascii=False), nl=True)
        else:
            payload = event.payload
            click.echo(f"{event.event} {payload['path']} ({payload['size']} bytes) id {event.id}")

    trigger = FileTrigger(
        path,
        pattern=pattern,
        stable_seconds=stable_seconds,
        include_existing=include_existing,
        poll=poll,
        event=event_name,
        sha256=sha256,
        store=get_client(ctx).store,
        on_event=show,
    )
    try:
        trigger.start()
        click.echo(f"watching {trigger.path} for {pattern} (Ctrl-C stops)", err=True)
        trigger.run()
    except KeyboardInterrupt:
        click.echo(f"stopped watching {trigger.path}", err=True)
