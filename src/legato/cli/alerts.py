"""``legato alert apply | ls | delete``: alert rules, sugar over automations."""

from __future__ import annotations

import click

from legato.cli.common import debug_option, emit_json, get_client


@click.group("alert")
def alert_group() -> None:
    """Alert rules: tell channels when runs fail, crash, run late or miss deadlines.

    \b
    Examples:
      legato alert apply -f alerts.yaml
      legato alert ls
      legato alert delete etl-failures
    """


@alert_group.command("apply")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A YAML file with a list of alerts (or an `alerts:` key).",
)
@debug_option
@click.pass_context
def apply_cmd(ctx: click.Context, path: str) -> None:
    """Create or update (by name) every alert in the file; nothing is saved when any
    of them is invalid. Each becomes the automation `alert:<name>`."""
    from legato.alerts import service

    with open(path, encoding="utf-8") as handle:
        alerts = service.load_yaml(handle.read())
    for name, created in service.apply(get_client(ctx).store, alerts):
        click.echo(f"{'created' if created else 'updated'} alert '{name}'")


@alert_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@debug_option
@click.pass_context
def ls_cmd(ctx: click.Context, as_json: bool) -> None:
    """List alerts with their events, channels and open groups."""
    from legato.alerts import service

    found = service.summaries(get_client(ctx).store)
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no alerts; create them with `legato alert apply -f FILE`")
        return
    for item in found:
        state = "enabled" if item["enabled"] else "paused"
        last = item["last_fired"] or "never fired"
        click.echo(
            f"{item['name']}  {state}  on: {', '.join(item['on'])}  "
            f"channels: {', '.join(item['channels'])}  open groups: {item['open_groups']}  "
            f"last fired: {last}"
        )


@alert_group.command("delete")
@click.argument("name")
@debug_option
@click.pass_context
def delete_cmd(ctx: click.Context, name: str) -> None:
    """Delete the alert NAME (its automation and its open groups)."""
    from legato.alerts import service

    service.delete(get_client(ctx).store, name)
    click.echo(f"deleted alert '{name}'")
