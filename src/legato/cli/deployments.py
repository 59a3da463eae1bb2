"""``legato deploy``, ``deployments``, ``deployment show|pause|resume|delete``, ``trigger``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from legato.cli.common import (
    debug_option,
    emit_json,
    get_client,
    make_console,
    parse_json_object,
    parse_time,
)
from legato.cli.execute import choose_parameters, parse_param_pairs
from legato.client.checks import INT32_MAX, INT32_MIN, deployment_problem
from legato.client.views import deployment_to_dict, flow_run_to_dict

if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from legato.automations.deployment_triggers import DeploymentEventTrigger
    from legato.client import Client
    from legato.records import Deployment

_PARAM_HELP = (
    "A default flow parameter; VALUE is read as JSON when it parses, else taken as text. "
    "Repeat for more. Overrides --params."
)


def _next(client: Client, deployment: Deployment, count: int) -> list[str]:
    from legato.cli.render import format_time

    return [format_time(t) for t in client.next_scheduled_times(deployment, count)]


def _describe(client: Client, deployment: Deployment) -> None:
    from legato.schedules import describe

    schedules = ", ".join(describe(s) for s in deployment.schedules) or "none (trigger only)"
    click.echo(f"deployment: {deployment.name}")
    click.echo(f"flow:       {deployment.flow_name} ({deployment.entrypoint})")
    click.echo(f"schedules:  {schedules}")
    click.echo(f"queue:      {deployment.work_queue} (priority {deployment.priority})")
    if deployment.concurrency_limit is not None:
        click.echo(
            f"limit:      {deployment.concurrency_limit} at a time "
            f"({deployment.collision_strategy.value})"
        )
    if deployment.parameters:
        from legato.cli.render import format_parameters

        click.echo(f"parameters: {format_parameters(deployment.parameters, limit=200)}")
    state = "paused" if deployment.paused else "active"
    click.echo(f"state:      {state}" + (", catch up missed slots" if deployment.catchup else ""))
    problem = deployment_problem(deployment)
    if problem is not None:
        click.echo(f"ERROR:      {problem}")
    upcoming = _next(client, deployment, 3) if not deployment.paused else []
    if upcoming:
        click.echo(f"next runs:  {', '.join(upcoming)}")


@click.command("deploy")
@click.argument("target", required=False)
@click.option("--name", help="The deployment's name (letters, digits, '.', '_', '-').")
@click.option("--all", "deploy_all", is_flag=True, help="Deploy everything in legato.yaml.")
@click.option(
    "--file",
    "project_file",
    default="legato.yaml",
    show_default=True,
    metavar="PATH",
    help="The project file read by --all.",
)
@click.option("--cron", "crons", multiple=True, metavar="EXPR", help="A cron schedule.")
@click.option(
    "--interval", "intervals", multiple=True, type=float, metavar="SECONDS", help="Run every N s."
)
@click.option("--rrule", "rrules", multiple=True, metavar="RULE", help="An iCalendar RRULE.")
@click.option(
    "--timezone", default="UTC", show_default=True, help="IANA zone the schedules are read in."
)
@click.option("-p", "--param", "pairs", multiple=True, metavar="NAME=VALUE", help=_PARAM_HELP)
@click.option("--params", "params_json", metavar="JSON", help="Default parameters as JSON.")
@click.option("--queue", "work_queue", default="default", show_default=True, metavar="NAME")
@click.option(
    "--priority",
    type=click.IntRange(INT32_MIN, INT32_MAX),
    default=0,
    show_default=True,
    help="Higher runs first.",
)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag; repeat for more.")
@click.option(
    "--concurrency-limit",
    type=click.IntRange(1, INT32_MAX),
    default=None,
    help="Active runs at most.",
)
@click.option(
    "--collision-strategy",
    type=click.Choice(["enqueue", "cancel_new"]),
    default="enqueue",
    show_default=True,
    help="At the limit: keep new runs queued, or cancel them.",
)
@click.option("--description", default=None)
@click.option("--catchup", is_flag=True, help="Run every slot missed while no scheduler ran.")
@click.option(
    "--deadline",
    "deadline_texts",
    multiple=True,
    metavar="SPAN[:started][:cancel]",
    help="Each run must end within SPAN (30s, 20m, 1h, 2d) of its scheduled time (or of "
    "its start with :started); else legato.flow-run.deadline-missed is emitted, and with "
    ":cancel the run is cancelled. Repeat for more. Default: the flow's own deadlines.",
)
@click.option(
    "--trigger-on",
    "trigger_on",
    multiple=True,
    metavar="EVENT",
    help="Also run on this event (a name or prefix.*; repeat for more): an event trigger, "
    "stored as the automation deployment:NAME:0.",
)
@click.option(
    "--match",
    "match_pairs",
    multiple=True,
    metavar="LABEL=VALUE",
    help="The trigger's event resource must carry this label (VALUE may end in *).",
)
@click.option(
    "--match-related",
    "related_pairs",
    multiple=True,
    metavar="LABEL=VALUE",
    help="A related resource must carry this label; flow=, deployment=, tag= name its id "
    "(flow=upstream: a run of flow upstream).",
)
@click.option(
    "--for-each", "for_each", multiple=True, metavar="LABEL", help="Count per value of LABEL."
)
@click.option(
    "--threshold",
    type=click.IntRange(1, INT32_MAX),
    default=1,
    show_default=True,
    help="Events needed to fire.",
)
@click.option(
    "--within",
    type=click.FloatRange(0),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="The window the threshold's events must fall in (0: none).",
)
@click.option(
    "--trigger-params",
    "trigger_params",
    metavar="JSON",
    help="The triggered run's parameters, each text a Jinja2 template over the event "
    '(e.g. \'{"upstream_run_id": "{{ flow_run_id }}"}\').',
)
@click.option(
    "--command",
    "command_line",
    metavar="CMD",
    help="Deploy a shell command instead of a flow (no TARGET): each run executes it as "
    '`legato wrap` does, e.g. --command "./nightly.sh --full".',
)
@click.option("--json", "as_json", is_flag=True, help="Print the deployment(s) as JSON.")
@debug_option
@click.pass_context
def deploy_cmd(
    ctx: click.Context,
    target: str | None,
    name: str | None,
    deploy_all: bool,
    project_file: str,
    crons: tuple[str, ...],
    intervals: tuple[float, ...],
    rrules: tuple[str, ...],
    timezone: str,
    pairs: tuple[str, ...],
    params_json: str | None,
    work_queue: str,
    priority: int,
    tags: tuple[str, ...],
    concurrency_limit: int | None,
    collision_strategy: str,
    description: str | None,
    catchup: bool,
    deadline_texts: tuple[str, ...],
    trigger_on: tuple[str, ...],
    match_pairs: tuple[str, ...],
    related_pairs: tuple[str, ...],
    for_each: tuple[str, ...],
    threshold: int,
    within: float,
    trigger_params: str | None,
    command_line: str | None,
    as_json: bool,
) -> None:
    """Create or update a deployment: a stored recipe that workers run.

    TARGET is path/to/file.py:flow or package.module:flow. Parameters are
    checked against the flow's signature first (all of them when there is a
    schedule, since scheduled runs get nothing else). With --all, every
    deployment in legato.yaml is checked, then stored.

    \b
    Examples:
      legato deploy flows/etl.py:etl --name nightly --cron "0 2 * * *" --timezone Europe/Paris
      legato deploy flows/etl.py:etl --name hourly --interval 3600 -p day=today
      legato deploy flows/etl.py:etl --name nightly --cron "0 2 * * *" --deadline 1h
      legato deploy flows/b.py:report --name report \\
          --trigger-on legato.flow-run.Completed --match-related flow=upstream \\
          --trigger-params '{"upstream_run_id": "{{ flow_run_id }}"}'
      legato deploy --all
      legato deploy --command "./nightly.sh --full" --name nightly-sh --cron "0 3 * * *"

    Deploying again replaces the deployment's triggers (none given: the flow's own,
    from @flow(triggers=...)).
    """
    client = get_client(ctx)
    triggers = _cli_trigger(
        trigger_on, match_pairs, related_pairs, for_each, threshold, within, trigger_params
    )
    if deploy_all:
        if target or name:
            raise click.UsageError("--all deploys legato.yaml; give no TARGET or --name with it")
        if triggers is not None:
            raise click.UsageError("--all deploys legato.yaml; give triggers there (triggers:)")
        deployed = client.deploy_project(project_file)
        if as_json:
            emit_json([deployment_to_dict(d, client.next_scheduled_times(d, 3)) for d in deployed])
            return
        for deployment in deployed:
            click.echo(f"deployed '{deployment.name}' ({deployment.flow_name})")
        return
    if command_line is not None:  # a command deployment: the observed `command` flow
        import json
        import shlex

        from legato.observed import COMMAND_ENTRYPOINT

        if target:
            raise click.UsageError("give a TARGET or --command, not both")
        if not shlex.split(command_line):
            raise click.UsageError("--command is empty; give the command to run")
        target = COMMAND_ENTRYPOINT
        pairs = (*pairs, "command=" + json.dumps(shlex.split(command_line)))
    if not target or not name:
        raise click.UsageError("give a TARGET and --name (or --all to deploy legato.yaml)")
    from legato.deadlines import parse_deadline
    from legato.schedules import make_schedule

    deadlines = [parse_deadline(text) for text in deadline_texts] if deadline_texts else None

    schedules = [make_schedule(cron=c, timezone=timezone) for c in crons]
    schedules += [make_schedule(interval=i, timezone=timezone) for i in intervals]
    schedules += [make_schedule(rrule=r, timezone=timezone) for r in rrules]
    flow = client.load_flow(target)
    base = parse_json_object(params_json, "--params")
    parameters = choose_parameters(
        client, flow, base, parse_param_pairs(pairs), partial=not schedules
    )
    deployment = client.deploy(
        target,
        name=name,
        schedules=schedules,
        parameters=parameters,
        work_queue=work_queue,
        priority=priority,
        tags=tags,
        concurrency_limit=concurrency_limit,
        collision_strategy=collision_strategy,
        description=description,
        catchup=catchup,
        deadlines=deadlines,
        triggers=triggers,
    )
    if as_json:
        emit_json(deployment_to_dict(deployment, client.next_scheduled_times(deployment, 3)))
        return
    _describe(client, deployment)


def _pairs(pairs: tuple[str, ...], option: str) -> dict[str, str | list[str]]:
    """LABEL=VALUE options as labels; a label given twice matches any of its values."""
    found: dict[str, str | list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r}: write LABEL=VALUE", param_hint=option)
        have = found.get(key.strip())
        if have is None:
            found[key.strip()] = value
        else:
            found[key.strip()] = [*([have] if isinstance(have, str) else have), value]
    return found


def _cli_trigger(
    trigger_on: tuple[str, ...],
    match_pairs: tuple[str, ...],
    related_pairs: tuple[str, ...],
    for_each: tuple[str, ...],
    threshold: int,
    within: float,
    params_json: str | None,
) -> list[DeploymentEventTrigger] | None:
    """The one trigger the options describe; None without --trigger-on."""
    from legato.automations.deployment_triggers import DeploymentEventTrigger

    if not trigger_on:
        given = [
            option
            for option, value in (
                ("--match", match_pairs),
                ("--match-related", related_pairs),
                ("--for-each", for_each),
                ("--threshold", threshold != 1),
                ("--within", within != 0),
                ("--trigger-params", params_json is not None),
            )
            if value
        ]
        if given:
            raise click.UsageError(f"{', '.join(given)} describe a trigger: add --trigger-on EVENT")
        return None
    return [
        DeploymentEventTrigger(
            expect=list(trigger_on),
            match=_pairs(match_pairs, "--match"),
            match_related=_pairs(related_pairs, "--match-related"),
            for_each=list(for_each),
            threshold=threshold,
            within=within,
            parameters=parse_json_object(params_json, "--trigger-params"),
        )
    ]


@click.command("deployments")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@debug_option
@click.pass_context
def deployments_cmd(ctx: click.Context, as_json: bool) -> None:
    """List deployments with their schedules and next run."""
    client = get_client(ctx)
    found = client.deployments()
    if as_json:
        emit_json([_with_problem(d, client.next_scheduled_times(d, 1)) for d in found])
        return
    if not found:
        click.echo("no deployments yet; create one with `legato deploy FILE.py:FLOW --name NAME`")
        return
    from rich.table import Table

    from legato.schedules import describe

    table = Table(box=None, pad_edge=False)
    for column in ("name", "flow", "schedules", "queue", "state", "next run"):
        table.add_column(column)
    broken: list[tuple[str, str]] = []
    for d in found:
        upcoming = _next(client, d, 1) if not d.paused else []
        problem = deployment_problem(d)
        if problem is not None:
            broken.append((d.name, problem))
        table.add_row(
            d.name,
            d.flow_name,
            ", ".join(describe(s) for s in d.schedules) or "-",
            d.work_queue,
            "ERROR" if problem is not None else "paused" if d.paused else "active",
            upcoming[0] if upcoming else "-",
        )
    make_console().print(table)
    for name, problem in broken:
        click.echo(
            f"ERROR: deployment '{name}' cannot be scheduled: {problem}; redeploy it "
            f"or delete it with `legato deployment delete {name}`",
            err=True,
        )


def _with_problem(deployment: Deployment, next_runs: list[datetime]) -> dict[str, Any]:
    """The deployment as JSON plus ``problem``: what is wrong with it as stored
    (a row written before today's checks), or null."""
    data = deployment_to_dict(deployment, next_runs)
    data["problem"] = deployment_problem(deployment)
    return data


@click.group("deployment")
def deployment_group() -> None:
    """Look at one deployment, pause or resume its schedules, or delete it."""


@deployment_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@debug_option
@click.pass_context
def show_deployment_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """The deployment, its next 5 scheduled runs and its 10 latest runs."""
    client = get_client(ctx)
    deployment = client.get_deployment(name)
    runs = client.list_runs(deployment=name, limit=10)
    triggers = _triggers(client, name)
    if as_json:
        data = _with_problem(deployment, client.next_scheduled_times(deployment, 5))
        data["triggers"] = triggers
        data["runs"] = [flow_run_to_dict(run) for run in runs]
        emit_json(data)
        return
    _describe(client, deployment)
    for trigger in triggers:
        click.echo(f"trigger:    {trigger['automation']}: {_trigger_text(trigger)}")
    if runs:
        from legato.cli.tables import runs_table

        click.echo("latest runs:")
        make_console().print(runs_table(runs))


def _triggers(client: Client, name: str) -> list[dict[str, Any]]:
    """The deployment's triggers as JSON: each automation's trigger, parameters,
    switch and last firing."""
    from legato.automations import service
    from legato.automations.deployment_triggers import owned

    found = []
    for stored in owned(client.store, name):
        data = service.summary(client.store, stored)
        actions = data["actions"] or [{}]
        found.append(
            {
                "automation": data["name"],
                "enabled": data["enabled"],
                "trigger": data["trigger"],
                "parameters": actions[0].get("parameters", {}),
                "last_fired": data["last_fired"],
            }
        )
    return found


def _trigger_text(trigger: dict[str, Any]) -> str:
    import json
    from datetime import timedelta

    from pydantic import TypeAdapter

    spec = trigger["trigger"] or {}
    parts = [f"on {', '.join(spec.get('expect') or ['any event'])}"]
    for key in ("match", "match_related"):
        if spec.get(key):
            parts.append(f"{key} {json.dumps(spec[key])}")
    within = TypeAdapter(timedelta).validate_python(spec.get("within") or 0).total_seconds()
    if spec.get("threshold", 1) != 1 or within:
        parts.append(f"{spec.get('threshold', 1)} within {within:g} s")
    if trigger["parameters"]:
        parts.append(f"parameters {json.dumps(trigger['parameters'])}")
    if not trigger["enabled"]:
        parts.append("(paused)")
    return "; ".join(parts)


def _toggle(ctx: click.Context, name: str, as_json: bool, paused: bool) -> None:
    client = get_client(ctx)
    deployment = client.pause_deployment(name) if paused else client.resume_deployment(name)
    if as_json:
        emit_json(deployment_to_dict(deployment, client.next_scheduled_times(deployment, 3)))
        return
    if paused:
        click.echo(f"paused '{name}': no new scheduled runs until `legato deployment resume`")
    else:
        upcoming = _next(client, deployment, 1)
        note = f"; next run {upcoming[0]}" if upcoming else ""
        click.echo(f"resumed '{name}'{note}")


@deployment_group.command("pause")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the deployment as JSON.")
@debug_option
@click.pass_context
def pause_deployment_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """Stop creating scheduled runs (runs already queued stay queued)."""
    _toggle(ctx, name, as_json, paused=True)


@deployment_group.command("resume")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the deployment as JSON.")
@debug_option
@click.pass_context
def resume_deployment_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """Create scheduled runs again (from now on; --catchup deployments fill the gap)."""
    _toggle(ctx, name, as_json, paused=False)


@deployment_group.command("delete")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@debug_option
@click.pass_context
def delete_deployment_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """Delete the deployment; its runs stay, with its name."""
    get_client(ctx).delete_deployment(name)
    if as_json:
        emit_json({"name": name, "deleted": True})
    else:
        click.echo(f"deleted deployment '{name}'")


@click.command("trigger")
@click.argument("name")
@click.option("-p", "--param", "pairs", multiple=True, metavar="NAME=VALUE", help=_PARAM_HELP)
@click.option("--params", "params_json", metavar="JSON", help="Parameters as one JSON object.")
@click.option(
    "--at",
    "at_text",
    default=None,
    metavar="TIME",
    help="When the run is due: ISO 8601 (UTC unless a zone is given) or +10m, +2h. Default: now.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the queued run as JSON.")
@debug_option
@click.pass_context
def trigger_cmd(
    ctx: click.Context,
    name: str,
    pairs: tuple[str, ...],
    params_json: str | None,
    at_text: str | None,
    as_json: bool,
) -> None:
    """Queue a run of deployment NAME for workers and print its id.

    Parameters (the deployment's, overridden by these) are checked against
    the flow's signature first: if one is invalid nothing is queued (exit 2).

    \b
    Examples:
      legato trigger nightly
      legato trigger nightly -p day=2026-11-21 --at +30m --json
    """
    client = get_client(ctx)
    at = parse_time(at_text, "'--at'") if at_text is not None else None
    deployment = client.get_deployment(name)
    flow = client.load_flow(deployment.entrypoint)
    base = {**deployment.parameters, **parse_json_object(params_json, "--params")}
    parameters = choose_parameters(client, flow, base, parse_param_pairs(pairs))
    run = client.trigger(name, parameters, at=at)
    if as_json:
        emit_json(flow_run_to_dict(run))
        return
    click.echo(run.id)
