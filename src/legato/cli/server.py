"""``legato server``: the REST API and web UI over this store."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from legato._net import is_loopback
from legato.cli.common import debug_option, get_client
from legato.errors import ConfigurationError, MissingExtraError

if TYPE_CHECKING:
    from legato.client import Client
    from legato.worker.leader import LeaderThread


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=4200, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--no-leader",
    is_flag=True,
    help="Do not take part in leading the store (schedules, sweeps, automations, "
    "notifications): leave that to workers and other servers.",
)
@debug_option
@click.pass_context
def server_cmd(ctx: click.Context, host: str, port: int, no_leader: bool) -> None:
    """Serve the web UI (at /) and the REST API (/api; OpenAPI at /openapi.json,
    browsable at /docs).

    The server also takes its turn at leading the store, as workers do: one
    process at a time (the holder of the scheduler lease) creates scheduled runs,
    marks crashed and late runs, fires deadlines, evaluates automations and sends
    notifications. --no-leader leaves that to others.

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
    client = get_client(ctx)
    app = create_app(client, token=token, allowed_hosts=hosts)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"legato server on http://{shown}:{port} (API docs at /docs)", err=True)
    leader = None if no_leader else _start_leader(client)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if leader is not None:
            leader.stop()


def _start_leader(client: Client) -> LeaderThread:
    from legato.engine.ids import new_id
    from legato.engine.liveness import hostname, lease_seconds
    from legato.worker.leader import Leader, LeaderThread

    def log(message: str) -> None:
        click.echo(f"legato server: {message}", err=True)

    holder = f"server-{hostname()}-{os.getpid()}-{new_id()[:8]}"
    thread = LeaderThread(Leader(client, holder=holder, lease=lease_seconds(), log=log), log=log)
    thread.start()
    return thread
