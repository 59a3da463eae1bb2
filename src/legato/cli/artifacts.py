"""``legato artifacts``: the markdown, tables, links and progress that runs published."""

from __future__ import annotations

import json
from typing import Any

import click

from legato.cli.common import debug_option, emit_json, get_client, make_console
from legato.client.checks import INT32_MAX
from legato.records import Artifact


def artifact_dict(artifact: Artifact) -> dict[str, object]:
    return {
        "id": artifact.id,
        "key": artifact.key,
        "type": artifact.type,
        "data": json.loads(artifact.data),
        "description": artifact.description,
        "flow_run_id": artifact.flow_run_id,
        "task_run_id": artifact.task_run_id,
        "created": artifact.created.isoformat(),
    }


def _table_size(table: Any) -> str:
    if isinstance(table, dict):
        rows = max((len(column) for column in table.values()), default=0)
        return f"table: {rows} row(s) x {len(table)} column(s)"
    return f"table: {len(table)} row(s)"


def summary(artifact: Artifact) -> str:
    """One line saying what the artifact holds."""
    data = json.loads(artifact.data)
    if artifact.type == "markdown" and isinstance(data, str):
        first = next((line.strip() for line in data.splitlines() if line.strip()), "")
        return f"markdown: {first}"
    if artifact.type == "table":
        return _table_size(data)
    if artifact.type == "link" and isinstance(data, dict):
        text = data.get("link_text")
        return f"link: {text} <{data.get('link')}>" if text else f"link: {data.get('link')}"
    if artifact.type == "progress" and isinstance(data, int | float):
        return f"progress: {data:g}%"
    return artifact.type


@click.command("artifacts")
@click.option("--key", default=None, help="Only the artifacts with this key.")
@click.option("--run", "run", default=None, metavar="RUN", help="Only those of this flow run.")
@click.option(
    "--limit", type=click.IntRange(1, INT32_MAX), default=50, show_default=True, metavar="N"
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (with the data).")
@debug_option
@click.pass_context
def artifacts_cmd(
    ctx: click.Context, key: str | None, run: str | None, limit: int, as_json: bool
) -> None:
    """List artifacts that flows and tasks published with `create_markdown_artifact`,
    `create_table_artifact`, `create_link_artifact` and `create_progress_artifact`:
    newest first, or in the order a run made them with --run."""
    artifacts = get_client(ctx).artifacts(key=key, run=run, limit=limit)
    if as_json:
        emit_json([artifact_dict(artifact) for artifact in artifacts])
        return
    if not artifacts:
        click.echo("no artifacts")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("created", no_wrap=True)
    table.add_column("key", no_wrap=True)
    table.add_column("run", no_wrap=True)
    table.add_column("what", overflow="ellipsis", no_wrap=True)
    table.add_column("description", overflow="ellipsis", no_wrap=True)
    for artifact in artifacts:
        table.add_row(
            artifact.created.strftime("%Y-%m-%d %H:%M:%S"),
            escape(artifact.key or "-"),
            (artifact.flow_run_id or "-")[:8],
            escape(summary(artifact)),
            escape(artifact.description or ""),
        )
    make_console().print(table)
