"""``legato notify``: notification channels, test messages, the outbox and its sender."""

from __future__ import annotations

import json
import uuid
from typing import Any

import click

from legato._notification_records import Delivery, NotificationChannel
from legato.cli.common import debug_option, emit_json, get_client, make_console
from legato.errors import ConfigurationError, NotificationChannelNotFoundError

_STATES = ("pending", "sending", "delivered", "dead")


def _channel_dict(channel: NotificationChannel) -> dict[str, Any]:
    from legato.notify.channels import shown_config

    return {
        "name": channel.name,
        "type": channel.type,
        "config": shown_config(channel.type, channel.config),
        "created": channel.created.isoformat(),
        "updated": channel.updated.isoformat(),
    }


def _delivery_dict(delivery: Delivery) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": delivery.id,
        "channel": delivery.channel,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "subject": delivery.subject,
        "idempotency_key": delivery.idempotency_key,
        "next_attempt_at": when(delivery.next_attempt_at),
        "last_error": delivery.last_error,
        "created": when(delivery.created),
        "delivered_at": when(delivery.delivered_at),
        "group_key": delivery.group_key,
    }


@click.group("notify")
def notify_group() -> None:
    """Notifications: channels (Slack, Teams, Discord, email, PagerDuty, signed webhooks,
    any Apprise URL) and the outbox of messages sent to them, with retries.

    Secrets are given by reference: the NAME of an environment variable, read where the
    sender runs (the worker leading the scheduler, or `legato notify send-due`).

    \b
    Examples:
      legato notify channel add ops --type slack --url-env SLACK_URL
      legato notify channel add hook --type webhook --url https://x/y --secret-env HOOK_SECRET
      legato notify channel add mail --type email --host smtp.example.com --port 587 \\
          --starttls --from legato@example.com --to ops@example.com --user legato \\
          --password-env SMTP_PASS
      legato notify channel add pd --type pagerduty --routing-key-env PD_KEY
      legato notify test ops
      legato notify deliveries --state dead
    """


@notify_group.group("channel")
def channel_group() -> None:
    """Add, list, show and delete notification channels."""


@channel_group.command("add")
@click.argument("name")
@click.option(
    "--type",
    "type_",
    required=True,
    type=click.Choice(["slack", "teams", "discord", "email", "pagerduty", "webhook", "apprise"]),
    help="The kind of channel.",
)
@click.option("--url-env", metavar="VAR", help="Variable holding the URL (webhook/apprise URL).")
@click.option("--url", help="The URL itself (masked in every output; prefer --url-env).")
@click.option("--secret-env", metavar="VAR", help="webhook: variable holding the HMAC secret.")
@click.option("--secret", help="webhook: the HMAC secret itself (masked; prefer --secret-env).")
@click.option("--routing-key-env", metavar="VAR", help="pagerduty: variable holding the key.")
@click.option("--routing-key", help="pagerduty: the routing key itself (masked).")
@click.option("--events-url", help="pagerduty: the Events API v2 URL (default PagerDuty's).")
@click.option(
    "--severity",
    type=click.Choice(["critical", "error", "warning", "info"]),
    help="pagerduty: severity of triggered alerts (default error).",
)
@click.option("--host", help="email: the SMTP server.")
@click.option("--port", type=int, help="email: its port (default 587 with --starttls, else 25).")
@click.option("--from", "from_", metavar="ADDRESS", help="email: the sender address.")
@click.option("--to", multiple=True, metavar="ADDRESS", help="email: a recipient (repeatable).")
@click.option("--starttls", is_flag=True, default=None, help="email: upgrade with STARTTLS.")
@click.option("--user", help="email: the SMTP user to log in as.")
@click.option("--password-env", metavar="VAR", help="email: variable holding the password.")
@click.option("--password", help="email: the password itself (masked; prefer --password-env).")
@click.option("--overwrite", is_flag=True, help="Replace the channel if it exists.")
@debug_option
@click.pass_context
def add_cmd(ctx: click.Context, /, name: str, type_: str, overwrite: bool, **options: Any) -> None:
    """Add channel NAME of --type with its settings."""
    from legato.notify.channels import check_channel
    from legato.records import utcnow

    config = {
        ("from" if key == "from_" else key): value
        for key, value in options.items()
        if value is not None and value != ()
    }
    checked = check_channel(name, type_, config)
    store = get_client(ctx).store
    if not store.put_notification_channel(name, type_, checked, overwrite=overwrite, now=utcnow()):
        raise ConfigurationError(
            f"notification channel '{name}' exists already: pass --overwrite to replace it, "
            f"or choose another name"
        )
    click.echo(f"added {type_} channel '{name}'")


@channel_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@debug_option
@click.pass_context
def ls_cmd(ctx: click.Context, as_json: bool) -> None:
    """List channels (secrets shown as env:NAME or masked)."""
    channels = get_client(ctx).store.list_notification_channels()
    if as_json:
        emit_json([_channel_dict(c) for c in channels])
        return
    if not channels:
        click.echo("no channels; add one with `legato notify channel add NAME --type ...`")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("settings")
    for channel in channels:
        shown = _channel_dict(channel)["config"]
        settings = ", ".join(f"{key}={_text(value)}" for key, value in shown.items())
        table.add_row(escape(channel.name), channel.type, escape(settings))
    make_console().print(table)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _get_channel(ctx: click.Context, name: str) -> NotificationChannel:
    channel = get_client(ctx).store.get_notification_channel(name)
    if channel is None:
        raise NotificationChannelNotFoundError(name)
    return channel


@channel_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@debug_option
@click.pass_context
def show_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show channel NAME (secrets shown as env:NAME or masked)."""
    data = _channel_dict(_get_channel(ctx, name))
    if as_json:
        emit_json(data)
        return
    click.echo(f"name: {data['name']}\ntype: {data['type']}")
    for key, value in data["config"].items():
        click.echo(f"{key}: {_text(value)}")
    click.echo(f"created: {data['created']}\nupdated: {data['updated']}")


@channel_group.command("delete")
@click.argument("name")
@debug_option
@click.pass_context
def delete_cmd(ctx: click.Context, name: str) -> None:
    """Delete channel NAME (its undelivered messages then go dead)."""
    if not get_client(ctx).store.delete_notification_channel(name):
        raise NotificationChannelNotFoundError(name)
    click.echo(f"deleted channel '{name}'")


@notify_group.command("test")
@click.argument("name")
@debug_option
@click.pass_context
def test_cmd(ctx: click.Context, name: str) -> None:
    """Send a test message to channel NAME now and print the outcome (exit 1 when it
    was not delivered; it stays in the outbox and is retried like any message)."""
    from legato.notify import enqueue_message
    from legato.notify.sender import Sender

    store = get_client(ctx).store
    _get_channel(ctx, name)
    delivery_id = enqueue_message(
        store,
        channel=name,
        subject=f"legato test message for channel '{name}'",
        body="If you can read this, legato can notify this channel.",
        idempotency_key=f"test:{name}:{uuid.uuid4().hex}",
        payload={"test": True},
    )
    sender = Sender(store)
    try:
        outcomes = sender.send_due()
    finally:
        sender.close()
    mine = [o for o in outcomes if o.delivery_id == delivery_id]
    if mine and mine[-1].state == "delivered":
        click.echo(f"delivered test message {delivery_id} to channel '{name}'")
        return
    if mine:
        raise click.ClickException(
            f"test message {delivery_id} to channel '{name}' failed: {mine[-1].error}; it "
            f"stays in the outbox ({mine[-1].state}), see `legato notify deliveries`"
        )
    raise click.ClickException(
        f"test message {delivery_id} waits behind earlier messages to channel '{name}' that "
        f"are waiting to retry; see `legato notify deliveries --channel {name}`"
    )


@notify_group.command("deliveries")
@click.option("--state", type=click.Choice(_STATES), help="Only deliveries in this state.")
@click.option("--channel", help="Only deliveries to this channel.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@debug_option
@click.pass_context
def deliveries_cmd(
    ctx: click.Context, state: str | None, channel: str | None, limit: int, as_json: bool
) -> None:
    """List the outbox, newest first: dead letters show their last error."""
    found = get_client(ctx).store.list_deliveries(state=state, channel=channel, limit=limit)
    if as_json:
        emit_json([_delivery_dict(d) for d in found])
        return
    if not found:
        click.echo("no deliveries")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("id", "channel", "state", "attempts", "subject", "last error"):
        table.add_column(column, overflow="fold")
    for d in found:
        table.add_row(
            str(d.id),
            escape(d.channel),
            d.state,
            str(d.attempts),
            escape(d.subject),
            escape(d.last_error or ""),
        )
    make_console().print(table)


@notify_group.command("send-due")
@click.option("--once", is_flag=True, help="One pass, then exit (default: keep sending).")
@click.option(
    "--interval", type=float, default=1.0, show_default=True, help="Seconds between passes."
)
@debug_option
@click.pass_context
def send_due_cmd(ctx: click.Context, once: bool, interval: float) -> None:
    """Send the messages that are due (workers leading the scheduler do this too)."""
    import threading

    from legato.notify.sender import Sender

    sender = Sender(get_client(ctx).store)
    stop = threading.Event()
    try:
        while True:
            for outcome in sender.send_due():
                line = f"{outcome.delivery_id} {outcome.channel}: {outcome.state}"
                click.echo(line + (f" ({outcome.error})" if outcome.error else ""))
            if once or stop.wait(interval):
                return
    except KeyboardInterrupt:
        return
    finally:
        sender.close()
