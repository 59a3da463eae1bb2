"""``legato automation apply | ls | show | pause | resume | delete | explain | run-evaluator``."""

from __future__ import annotations

import time
from typing import Any

import click

from legato.cli.common import debug_option, emit_json, get_client


@click.group("automation")
def automation_group() -> None:
    """Automations: when events match a trigger (or fail to arrive), run actions.

    \b
    Examples:
      legato automation apply -f automations.yaml
      legato automation ls
      legato automation explain b-after-a --event 0f3c...
      legato automation pause b-after-a
    """


@automation_group.command("apply")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A YAML file with a list of automations.",
)
@debug_option
@click.pass_context
def apply_cmd(ctx: click.Context, path: str) -> None:
    """Create or update (by name) every automation in the file. Nothing is saved
    when any of them is invalid."""
    from legato.automations import service

    with open(path, encoding="utf-8") as handle:
        automations = service.load_yaml(handle.read())
    for stored, created in service.apply(get_client(ctx).store, automations):
        click.echo(f"{'created' if created else 'updated'} automation '{stored.name}'")


@automation_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@debug_option
@click.pass_context
def ls_cmd(ctx: click.Context, as_json: bool) -> None:
    """List automations with their state and last firing."""
    from legato.automations import service

    store = get_client(ctx).store
    found = [service.summary(store, a) for a in store.list_automations()]
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no automations; create them with `legato automation apply -f FILE`")
        return
    for item in found:
        state = "enabled" if item["enabled"] else "paused"
        last = item["last_fired"] or "never fired"
        click.echo(f"{item['name']}  {state}  last fired: {last}")


@automation_group.command("show")
@click.argument("name")
@debug_option
@click.pass_context
def show_cmd(ctx: click.Context, name: str) -> None:
    """Print the automation NAME as JSON."""
    from legato.automations import service

    store = get_client(ctx).store
    stored, _ = service.get(store, name)
    emit_json(service.summary(store, stored))


@automation_group.command("pause")
@click.argument("name")
@debug_option
@click.pass_context
def pause_cmd(ctx: click.Context, name: str) -> None:
    """Stop evaluating NAME (its open windows are forgotten when they end)."""
    from legato.automations import service

    service.set_enabled(get_client(ctx).store, name, False)
    click.echo(f"paused automation '{name}'")


@automation_group.command("resume")
@click.argument("name")
@debug_option
@click.pass_context
def resume_cmd(ctx: click.Context, name: str) -> None:
    """Evaluate NAME again (from the events that arrive from now on)."""
    from legato.automations import service

    service.set_enabled(get_client(ctx).store, name, True)
    click.echo(f"resumed automation '{name}'")


@automation_group.command("delete")
@click.argument("name")
@debug_option
@click.pass_context
def delete_cmd(ctx: click.Context, name: str) -> None:
    """Delete NAME with its state and firing history."""
    from legato.automations import service

    service.delete(get_client(ctx).store, name)
    click.echo(f"deleted automation '{name}'")


def _print_explain(report: dict[str, Any]) -> None:
    state = "enabled" if report["enabled"] else "paused"
    click.echo(f"automation {report['name']} ({state}), fired {report['firing_count']} time(s)")
    click.echo(f"open buckets: {len(report['buckets'])}")
    for bucket in report["buckets"]:
        ends = bucket["expires_at"] or "no window"
        click.echo(
            f"  {bucket['key'] or '(all)'}: {bucket['count']} event(s) since "
            f"{bucket['opened_at']}, window ends {ends}"
        )
    for firing in report["firings"]:
        click.echo(f"firing {firing['id']} at {firing['fired_at']}: {firing['reason']}")
        for event in firing["events"]:
            click.echo(f"  event {event['id']} {event['event']} about {event['resource_id']}")
        for action in firing["actions"]:
            result = f": {action['result']}" if action["result"] else ""
            click.echo(
                f"  action {action['index']} {action['type']}: {action['state']} after "
                f"{action['attempts']} attempt(s){result}"
            )
    if "event" in report:
        event = report["event"]
        verdict = "matched" if event["matched"] else "did not match"
        click.echo(f"event {event['id']} {verdict}: {event['why']}")
        for firing_id in event.get("firings", []):
            click.echo(f"  caused firing {firing_id}")


@automation_group.command("explain")
@click.argument("name")
@click.option("--event", "event_id", default=None, help="Say whether this event matched, and why.")
@click.option("--limit", default=10, show_default=True, help="Firings to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@debug_option
@click.pass_context
def explain_cmd(
    ctx: click.Context, name: str, event_id: str | None, limit: int, as_json: bool
) -> None:
    """Show NAME's open buckets, recent firings with the events that caused them and
    each action's state or error; with --event, whether that event matched and why not."""
    from legato.automations import service

    report = service.explain(get_client(ctx).store, name, event_id=event_id, limit=limit)
    if as_json:
        emit_json(report)
    else:
        _print_explain(report)


@automation_group.command("run-evaluator")
@click.option("--once", is_flag=True, help="Evaluate until caught up, run due actions, exit.")
@click.option("--interval", default=0.5, show_default=True, help="Seconds between steps.")
@click.option(
    "--batch", default=500, show_default=True, type=click.IntRange(1), help="Events a step."
)
@debug_option
@click.pass_context
def run_evaluator_cmd(ctx: click.Context, once: bool, interval: float, batch: int) -> None:
    """Run the automation evaluator in this process (a worker's scheduler leader runs
    it already; this is for tests and for stores without a worker)."""
    from legato.automations.evaluator import Evaluator

    evaluator = Evaluator(get_client(ctx), batch=batch, log=lambda m: click.echo(m, err=True))
    while True:
        result = evaluator.run_until_caught_up()
        if once:
            click.echo(
                f"evaluated {result.events} event(s): {result.firings} firing(s), "
                f"{result.actions} action(s) run"
            )
            return
        time.sleep(interval)
