"""``legato wrap -- CMD ARGS...``: run any command as a recorded flow run."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import click

from legato.cli.common import EXIT_INTERRUPTED, debug_option


def _interrupt(signum: int, frame: FrameType | None) -> None:
    from legato.observed import INTERRUPTED

    INTERRUPTED.set()  # the command's group is stopped, then the run recorded as crashed


@click.command(
    "wrap", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option("--name", help="The flow name of the run (default: the command's file name).")
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Run the command again this many times after a failure.",
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds to wait before each retry.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop the command (its whole process group) after this many seconds.",
)
@click.option("--tag", "tags", multiple=True, help="A tag for the run; repeat for more.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@debug_option
def wrap_cmd(
    name: str | None,
    retries: int,
    retry_delay: float,
    timeout: float | None,
    tags: tuple[str, ...],
    command: tuple[str, ...],
) -> None:
    """Run COMMAND as a recorded flow run, and exit with its exit code.

    Its stdout and stderr pass through and become the run's log lines; exit code
    0 completes the run, any other fails it. Cancelling the run (`legato cancel`),
    the timeout, Ctrl-C and SIGTERM stop the command's whole process group (SIGTERM,
    then SIGKILL after LEGATO_WRAP_GRACE_SECONDS). If the store is out of reach the
    command runs anyway and its record is spooled, then uploaded by the next
    `legato wrap`. Wrapped runs are never resumed: run the command again.

    \b
    Examples:
      legato wrap -- ./nightly.sh --full
      legato wrap --name backup --retries 2 --retry-delay 30 --timeout 3600 -- rsync -a src dst
    """
    from legato.observed import wrap_command

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = wrap_command(
            list(command),
            name=name,
            retries=retries,
            retry_delay=retry_delay,
            timeout=timeout,
            tags=tags,
        )
    except KeyboardInterrupt:
        click.echo("interrupted: the command's process group was stopped", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.exit(code)
