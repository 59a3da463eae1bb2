"""``legato prompts ls | show | diff``: the prompt versions model calls stored."""

from __future__ import annotations

import click

from legato.cli.common import debug_option, emit_json, get_client, make_console
from legato.client.prompts import (
    prompt_diff_to_dict,
    prompt_summary_to_dict,
    prompt_version_to_dict,
    split_stored_text,
)


@click.group("prompts")
def prompts_group() -> None:
    """Prompts: every version of a `legato.ai.Prompt` a model call used, stored once
    by its content hash (the version), so any recorded answer can be traced to its text.

    \b
    Examples:
      legato prompts ls
      legato prompts show triage
      legato prompts show triage --version 3f2a
      legato prompts diff triage 3f2a 9c1e
    """


@prompts_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@debug_option
@click.pass_context
def ls_cmd(ctx: click.Context, as_json: bool) -> None:
    """List prompts with their number of versions and the newest one."""
    prompts = get_client(ctx).prompts()
    if as_json:
        emit_json([prompt_summary_to_dict(p) for p in prompts])
        return
    if not prompts:
        click.echo("no prompts; a model call stores its prompt's version on first use")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("versions", justify="right")
    table.add_column("newest", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for summary in prompts:
        table.add_row(
            escape(summary.name),
            str(summary.versions),
            summary.latest_version,
            summary.latest_created.strftime("%Y-%m-%d %H:%M:%S"),
        )
    make_console().print(table)


@prompts_group.command("show")
@click.argument("name")
@click.option("--version", "version", metavar="V", help="A version or a unique prefix of one.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@debug_option
@click.pass_context
def show_cmd(ctx: click.Context, name: str, version: str | None, as_json: bool) -> None:
    """Show a version of prompt NAME (the newest unless --version): its template, its
    system part, and the prompt's versions."""
    client = get_client(ctx)
    shown = client.prompt(name, version)
    versions = client.prompt_versions(name)
    if as_json:
        data = prompt_version_to_dict(shown)
        data["versions"] = [
            {"version": v.version, "created": prompt_version_to_dict(v)["created"]}
            for v in versions
        ]
        emit_json(data)
        return
    template, system = split_stored_text(shown.template)
    newest = " (newest)" if versions and versions[0].version == shown.version else ""
    click.echo(f"prompt {shown.name} version {shown.version}{newest}")
    click.echo(f"created {shown.created.strftime('%Y-%m-%d %H:%M:%S')}")
    click.echo("")
    click.echo(click.style("template:", bold=True))
    click.echo(template)
    if system is not None:
        click.echo("")
        click.echo(click.style("system:", bold=True))
        click.echo(system)
    click.echo("")
    listed = ", ".join(v.version for v in versions)
    click.echo(f"versions (newest first): {listed}")


@prompts_group.command("diff")
@click.argument("name")
@click.argument("old", metavar="V1")
@click.argument("new", metavar="V2")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@debug_option
@click.pass_context
def diff_cmd(ctx: click.Context, name: str, old: str, new: str, as_json: bool) -> None:
    """Show what changed in prompt NAME from version V1 to V2 (versions or unique
    prefixes): a unified diff of the template, then of the system part."""
    diff = get_client(ctx).prompt_diff(name, old, new)
    if as_json:
        emit_json(prompt_diff_to_dict(diff))
        return
    if not diff.template_diff and not diff.system_diff:
        click.echo(
            f"prompt {name}: versions {diff.old.version} and {diff.new.version} are the same"
        )
        return
    for line in [*diff.template_diff, *diff.system_diff]:
        if line.startswith(("+++", "---")):
            click.echo(click.style(line, bold=True))
        elif line.startswith("+"):
            click.echo(click.style(line, fg="green"))
        elif line.startswith("-"):
            click.echo(click.style(line, fg="red"))
        elif line.startswith("@@"):
            click.echo(click.style(line, fg="cyan"))
        else:
            click.echo(line)
