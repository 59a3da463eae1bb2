"""``legato ai costs``: what model calls cost, summed per flow, deployment or model."""

from __future__ import annotations

from datetime import timedelta

import click

from legato._llm_records import LLMGroup
from legato.cli.common import debug_option, emit_json, get_client, make_console
from legato.cli.db import parse_age
from legato.client.llm_views import format_cost, format_tokens, usage_dict
from legato.records import utcnow

_GROUPS = {"flow": LLMGroup.FLOW, "deployment": LLMGroup.DEPLOYMENT, "model": LLMGroup.MODEL}


@click.group("ai")
def ai_group() -> None:
    """Model calls made by flows (`legato.ai.call`): their tokens and costs.

    \b
    Examples:
      legato ai costs
      legato ai costs --by deployment --since 7d
      legato ai costs --by model --json
    """


@ai_group.command("costs")
@click.option(
    "--by",
    "group",
    type=click.Choice(sorted(_GROUPS), case_sensitive=False),
    default="flow",
    show_default=True,
    help="Sum per flow name, deployment name or model.",
)
@click.option(
    "--since",
    metavar="AGE",
    help="Only tries made in the last AGE (90s, 15m, 12h, 7d, 2w); all when not given.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@debug_option
@click.pass_context
def costs_cmd(ctx: click.Context, group: str, since: str | None, as_json: bool) -> None:
    """Tries, tokens and cost of model calls, highest cost first.

    Every answered try counts, validation retries included; a forked run counts
    the calls it copied from its source (they were paid for once, in the source).
    Runs without a deployment are summed under "-".
    """
    age: timedelta | None = parse_age(since, "'--since'") if since else None
    client = get_client(ctx)
    found = client.store.llm_usage_totals(
        _GROUPS[group.lower()], since=None if age is None else utcnow() - age
    )
    if as_json:
        emit_json(
            [
                {group.lower(): total.group, **usage_dict(total.calls, total.usage, total.cost_usd)}
                for total in found
            ]
        )
        return
    if not found:
        click.echo("no model calls" + (f" in the last {since}" if since else " yet"))
        return
    from rich.table import Table

    from legato.cli.tables import print_trimmed

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column(group.upper(), overflow="fold")
    for header in ("TRIES", "INPUT", "OUTPUT", "CACHED", "REASONING", "COST"):
        table.add_column(header, justify="right", no_wrap=True)
    for total in found:
        usage = total.usage
        table.add_row(
            total.group or "-",
            str(total.calls),
            format_tokens(usage.input_tokens),
            format_tokens(usage.output_tokens),
            format_tokens(usage.cached_tokens),
            format_tokens(usage.reasoning_tokens),
            format_cost(total.cost_usd),
        )
    all_tries = sum(total.calls for total in found)
    table.add_row(
        "total",
        str(all_tries),
        format_tokens(sum(t.usage.input_tokens for t in found)),
        format_tokens(sum(t.usage.output_tokens for t in found)),
        format_tokens(sum(t.usage.cached_tokens for t in found)),
        format_tokens(sum(t.usage.reasoning_tokens for t in found)),
        format_cost(sum(t.cost_usd for t in found)),
        style="bold",
    )
    print_trimmed(make_console(), table)
