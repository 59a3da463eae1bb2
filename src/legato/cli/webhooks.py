"""``legato webhook create | ls | show | enable | disable | delete | test``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from legato._webhook_records import Webhook
from legato.cli.common import debug_option, emit_json, get_client, make_console
from legato.engine.webhooks import WebhookRequest


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=what)
        found[key] = rest
    return found


def _secret_shown(webhook: Webhook) -> str:
    if webhook.secret_env:
        return f"${webhook.secret_env}"
    return webhook.masked_secret or "-"


@click.group("webhook")
def webhook_group() -> None:
    """Webhooks: `POST /hooks/SLUG` on `legato server` turns a request into an event,
    through a stored template (sandboxed Jinja2 rendering the event's JSON).

    \b
    Examples:
      legato webhook create deliveries
      legato webhook create github --template github.json.j2 --hmac-secret-env GITHUB_SECRET
      legato webhook test github --body '{"ref": "refs/heads/main"}'
      legato webhook ls
    """


@webhook_group.command("create")
@click.argument("slug")
@click.option(
    "--template",
    "template_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file holding the template (default: event webhook.received, the body as payload).",
)
@click.option("--template-text", help="The template itself, instead of --template FILE.")
@click.option(
    "--hmac-secret-env",
    metavar="VAR",
    help="Check X-Hub-Signature-256 (GitHub's HMAC-SHA256) with the secret in $VAR on the server.",
)
@click.option(
    "--secret-env",
    metavar="VAR",
    help="Require the secret in $VAR (of the server) as 'Authorization: Bearer' or "
    "'X-Legato-Webhook-Secret'.",
)
@click.option("--hmac-secret", metavar="TEXT", help="Like --hmac-secret-env, the secret itself.")
@click.option("--secret", metavar="TEXT", help="Like --secret-env, the secret itself.")
@click.option("--description", default="", help="What the webhook is for.")
@click.option("--overwrite", is_flag=True, help="Replace a webhook of that slug.")
@debug_option
@click.pass_context
def create_cmd(
    ctx: click.Context,
    slug: str,
    template_file: Path | None,
    template_text: str | None,
    hmac_secret_env: str | None,
    secret_env: str | None,
    hmac_secret: str | None,
    secret: str | None,
    description: str,
    overwrite: bool,
) -> None:
    """Create webhook SLUG, answered at POST /hooks/SLUG.

    The template renders JSON with "event", "resource" and optionally "related",
    "payload", "id" (a redelivery with the same id is stored once), "occurred",
    "follows". It sees body (JSON or form), raw_body, headers (lower-case), query,
    method and slug; write values with the tojson filter: {{ body.ref | tojson }}.
    """
    if template_file is not None and template_text is not None:
        raise click.UsageError("give --template FILE or --template-text, not both")
    given = [
        (kind, name, value)
        for kind, name, value in (
            ("hmac", "hmac_env", hmac_secret_env),
            ("secret", "secret_env", secret_env),
            ("hmac", "hmac_text", hmac_secret),
            ("secret", "secret_text", secret),
        )
        if value
    ]
    if len(given) > 1:
        raise click.UsageError(
            "give one of --hmac-secret-env, --secret-env, --hmac-secret, --secret"
        )
    auth, env, plain = "none", None, None
    if given:
        auth, name, value = given[0]
        env, plain = (value, None) if name.endswith("env") else (None, value)
    template = template_text
    if template_file is not None:
        template = template_file.read_text(encoding="utf-8")
    webhook = get_client(ctx).create_webhook(
        slug,
        template=template,
        auth=auth,
        secret_env=env,
        secret=plain,
        description=description,
        overwrite=overwrite,
    )
    click.echo(f"created webhook '{webhook.slug}' (auth: {webhook.auth}): POST /hooks/{slug}")


@webhook_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@debug_option
@click.pass_context
def ls_cmd(ctx: click.Context, as_json: bool) -> None:
    """List webhooks (secrets masked)."""
    webhooks = get_client(ctx).webhooks()
    if as_json:
        emit_json([w.to_dict() for w in webhooks])
        return
    if not webhooks:
        click.echo("no webhooks; create one with `legato webhook create SLUG`")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("slug", "auth", "secret", "enabled", "description"):
        table.add_column(column, no_wrap=column != "description")
    for w in webhooks:
        table.add_row(
            escape(w.slug),
            w.auth,
            escape(_secret_shown(w)),
            "yes" if w.enabled else "no",
            escape(w.description),
        )
    make_console().print(table)


@webhook_group.command("show")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@debug_option
@click.pass_context
def show_cmd(ctx: click.Context, slug: str, as_json: bool) -> None:
    """Show webhook SLUG with its template (the secret masked)."""
    webhook = get_client(ctx).get_webhook(slug)
    if as_json:
        emit_json(webhook.to_dict())
        return
    click.echo(f"slug:        {webhook.slug}")
    click.echo(f"description: {webhook.description}")
    click.echo(f"auth:        {webhook.auth}")
    click.echo(f"secret:      {_secret_shown(webhook)}")
    click.echo(f"enabled:     {'yes' if webhook.enabled else 'no'}")
    click.echo("template:")
    click.echo(webhook.template)


@webhook_group.command("enable")
@click.argument("slug")
@debug_option
@click.pass_context
def enable_cmd(ctx: click.Context, slug: str) -> None:
    """Answer requests to webhook SLUG again."""
    get_client(ctx).set_webhook_enabled(slug, True)
    click.echo(f"enabled webhook '{slug}'")


@webhook_group.command("disable")
@click.argument("slug")
@debug_option
@click.pass_context
def disable_cmd(ctx: click.Context, slug: str) -> None:
    """Answer 404 to requests to webhook SLUG until it is enabled."""
    get_client(ctx).set_webhook_enabled(slug, False)
    click.echo(f"disabled webhook '{slug}'")


@webhook_group.command("delete")
@click.argument("slug")
@debug_option
@click.pass_context
def delete_cmd(ctx: click.Context, slug: str) -> None:
    """Delete webhook SLUG."""
    get_client(ctx).delete_webhook(slug)
    click.echo(f"deleted webhook '{slug}'")


@webhook_group.command("test")
@click.argument("slug")
@click.option("--body", default="", help="The request body (JSON, or form text with --form).")
@click.option("--form", is_flag=True, help="Send the body as an urlencoded form.")
@click.option("--header", "headers", multiple=True, metavar="NAME=VALUE", help="A header.")
@click.option("--query", "query", multiple=True, metavar="NAME=VALUE", help="A query parameter.")
@click.option("--emit", is_flag=True, help="Store the event too (no authentication is checked).")
@debug_option
@click.pass_context
def test_cmd(
    ctx: click.Context,
    slug: str,
    body: str,
    form: bool,
    headers: tuple[str, ...],
    query: tuple[str, ...],
    emit: bool,
) -> None:
    """Render webhook SLUG's template for a request and print the event it makes."""
    header_map = {k.lower(): v for k, v in _pairs(headers, "--header").items()}
    header_map.setdefault(
        "content-type", "application/x-www-form-urlencoded" if form else "application/json"
    )
    request = WebhookRequest(
        raw_body=body.encode(), headers=header_map, query=_pairs(query, "--query")
    )
    client = get_client(ctx)
    event = client.render_webhook(slug, request)
    if emit:
        client.store.emit_events([event])
    click.echo(json.dumps(event.to_dict(), indent=2, ensure_ascii=False))
