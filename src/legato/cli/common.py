"""What every command shares: exit codes, the client, JSON output, the --debug flag."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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
    value = parse_json_value(text, option)
    if not isinstance(value, dict):
        raise click.BadParameter(
            f"expected a JSON object like '{{\"name\": 1}}', got {type(value).__name__}",
            param_hint=option,
        )
    return value


def parse_json_value(text: str, option: str) -> Any:
    """JSON text given on the command line, read and checked that it can be stored:
    a usage error (exit 2) when it is not JSON, nests too deep, or holds text that
    is not Unicode (a lone surrogate such as ``\\ud800``)."""
    from legato.engine.params import storable_problem

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})", param_hint=option) from None
    except RecursionError:
        raise click.BadParameter(_too_deep(), param_hint=option) from None
    problem = storable_problem(value)
    if problem is not None:
        raise click.BadParameter(f"the JSON {problem}", param_hint=option)
    return value


def _too_deep() -> str:
    from legato.engine.params import MAX_PARAMETER_DEPTH

    return (
        f"the JSON is nested more than {MAX_PARAMETER_DEPTH} levels deep; flatten it or "
        f"pass a reference (a path, an id) instead"
    )


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def make_console(*, stderr: bool = False) -> Console:
    """A rich console; imported here, not at module top, to keep startup fast."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


_RELATIVE = re.compile(r"^([+-])(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601 (no zone = UTC), ``now``, or relative to now: ``-3d``, ``+10m``."""
    value = text.strip()
    if value == "now":
        return datetime.now(UTC)
    relative = _RELATIVE.match(value)
    if relative:
        seconds = float(relative.group(2)) * _UNIT_SECONDS[relative.group(3)]
        sign = -1 if relative.group(1) == "-" else 1
        try:
            return datetime.now(UTC) + timedelta(seconds=sign * seconds)
        except OverflowError:
            raise click.BadParameter(
                f"{text!r} is further from now than dates go (years 1 to 9999)",
                param_hint=option,
            ) from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time: use ISO 8601 like 2026-11-01T00:00 (UTC unless a "
            f"zone is given), 'now', or a time relative to now like -3d, -12h, +10m",
            param_hint=option,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
