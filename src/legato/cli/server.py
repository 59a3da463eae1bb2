"""``legato server``: the REST API and web UI over this store."""

from __future__ import annotations

import ipaddress
import os

import click

from legato.cli.common import debug_option, get_client
from legato.errors import ConfigurationError, MissingExtraError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=4200, show_default=True, type=click.IntRange(0, 65535))
@debug_option
@click.pass_context
def server_cmd(ctx: click.Context, host: str, port: int) -> None:
    """Serve the web UI (at /) and the REST API (/api; OpenAPI at /openapi.json,
    browsable at /docs).

    Bound to 127.0.0.1 by default. On any other address it refuses to start
    unless LEGATO_API_TOKEN is set; every API call then needs
    'Authorization: Bearer <token>', and the UI asks for the token once.

    \b
    Examples:
      legato server
      LEGATO_API_TOKEN=$(openssl rand -hex 16) legato server --host 0.0.0.0
    """
    token = os.environ.get("LEGATO_API_TOKEN", "").strip() or None
    if not is_loopback(host) and token is None:
        raise ConfigurationError(
            f"refusing to serve on {host} without LEGATO_API_TOKEN: anyone who can reach it "
            f"could read and act on every run; set LEGATO_API_TOKEN, or bind 127.0.0.1"
        )
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("server", "uvicorn", "the legato server") from None
    from legato.server import create_app

    # Without a token, only loopback names are answered: a web page whose own
    # name was rebound to 127.0.0.1 is then refused instead of served.
    hosts = None if token else ["127.0.0.1", "localhost", "::1", "[::1]", host]
    app = create_app(get_client(ctx), token=token, allowed_hosts=hosts)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"legato server on http://{shown}:{port} (API docs at /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
