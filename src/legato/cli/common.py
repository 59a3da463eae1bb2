"""What every command shares: exit codes, the client, JSON output, the --debug flag."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from legato.states import StateType

if TYPE_CHECKING:
    from rich.console import Console

    from legato.client import Client

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PAUSED = 3
EXIT_INTERRUPTED = 130  # what a shell reports for Ctrl-C

_STATE_EXIT_CODES = {
    StateType.COMPLETED: EXIT_OK,
    StateType.PAUSED: EXIT_PAUSED,
}


class _Flags:
    """Process-wide CLI flags; a CLI process runs one command, so a global is honest."""

    debug = False


flags = _Flags()


def exit_code_for(state: StateType) -> int:
    """0 completed, 3 paused, 1 for everything else (failed, crashed, cancelled, or
    a run that somehow stopped before reaching a final state)."""
    return _STATE_EXIT_CODES.get(state, EXIT_FAILED)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        flags.debug = True


def debug_option(fn: F) -> F:
    """``--debug`` on a subcommand too, so ``legato run x.py:f --debug`` works as
    well as ``legato --debug run x.py:f``."""
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show the full traceback of an error.",
    )(fn)


def get_client(ctx: click.Context) -> Client:
    """The command's client, created on first use and closed when the command ends."""
    root = ctx.find_root()
    obj = root.ensure_object(dict)
    client: Client | None = obj.get("client")
    if client is None:
        from legato.client import Client

        client = Client()
        obj["client"] = client
        root.call_on_close(client.store.close)
    return client


def dumps(data: Any) -> str:
    """Strict JSON text (no NaN); anything a view missed is shown as a string."""
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=str)


def emit_json(data: Any) -> None:
    click.echo(dumps(data))


def json_result(value: Any) -> tuple[bool, Any]:
    """(True, value) when ``value`` round-trips through strict JSON as it is."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False, None
    return True, value


def parse_json_object(text: str | None, option: str) -> dict[str, Any]:
    """The JSON object given to ``option``; a usage error (exit 2) otherwise."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})", param_hint=option) from None
    if not isinstance(value, dict):
        raise click.BadParameter(
            f"expected a JSON object like '{{\"name\": 1}}', got {type(value).__name__}",
            param_hint=option,
        )
    return value


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def make_console(*, stderr: bool = False) -> Console:
    """A rich console; imported here, not at module top, to keep startup fast."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)
