"""``legato variable set | get | ls | delete``: named JSON values shared by flows."""

from __future__ import annotations

import json
from typing import Any

import click

from legato.cli.common import debug_option, emit_json, get_client, make_console
from legato.records import StoredVariable


def _value_of(text: str) -> Any:
    """VALUE as JSON when it is JSON (``42``, ``true``, ``[1, 2]``, ``'"42"'``), else the text."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _variable_dict(variable: StoredVariable) -> dict[str, object]:
    return {
        "name": variable.name,
        "value": json.loads(variable.value),
        "tags": list(variable.tags),
        "created": variable.created.isoformat(),
        "updated": variable.updated.isoformat(),
    }


@click.group("variable")
def variable_group() -> None:
    """Variables: named JSON values that flows read with `Variable.get(name)`, kept in
    the store (the same as Prefect's variables).

    \b
    Examples:
      legato variable set api_url https://example.com
      legato variable set retries 3 --overwrite
      legato variable set crew '["zaphod", "arthur"]' --tag team
      legato variable get crew
      legato variable ls
    """


@variable_group.command("set")
@click.argument("name")
@click.argument("value")
@click.option("--overwrite", is_flag=True, help="Replace the variable if it exists.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag (repeatable).")
@debug_option
@click.pass_context
def set_cmd(
    ctx: click.Context, name: str, value: str, overwrite: bool, tags: tuple[str, ...]
) -> None:
    """Set variable NAME to VALUE: JSON when it reads as JSON (42, true, [1, 2], {"a": 1}),
    otherwise the text itself; quote a JSON string ('"42"') to keep a number as text."""
    parsed = _value_of(value)
    get_client(ctx).set_variable(name, parsed, tags=list(tags), overwrite=overwrite)
    click.echo(f"set variable '{name}' = {_shown(parsed)}")


@variable_group.command("get")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the value as JSON.")
@debug_option
@click.pass_context
def get_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """Print the value of variable NAME (text as it is, anything else as JSON)."""
    value = get_client(ctx).get_variable(name)
    if as_json:
        emit_json(value)
    else:
        click.echo(_shown(value))


@variable_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@debug_option
@click.pass_context
def ls_cmd(ctx: click.Context, as_json: bool) -> None:
    """List variables with their values and tags."""
    variables = get_client(ctx).variables()
    if as_json:
        emit_json([_variable_dict(variable) for variable in variables])
        return
    if not variables:
        click.echo("no variables; create one with `legato variable set NAME VALUE`")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("value", overflow="ellipsis", no_wrap=True, max_width=60)
    table.add_column("tags")
    table.add_column("updated", no_wrap=True)
    for variable in variables:
        table.add_row(
            escape(variable.name),
            escape(_shown(json.loads(variable.value))),
            escape(", ".join(variable.tags)),
            variable.updated.strftime("%Y-%m-%d %H:%M:%S"),
        )
    make_console().print(table)


@variable_group.command("delete")
@click.argument("name")
@debug_option
@click.pass_context
def delete_cmd(ctx: click.Context, name: str) -> None:
    """Delete variable NAME."""
    get_client(ctx).delete_variable(name)
    click.echo(f"deleted variable '{name}'")
