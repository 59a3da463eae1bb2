"""The ``legato`` command: the click group, and the error policy around every command.

Errors a user can cause (a bad option, an unknown run, invalid parameters)
are one line on stderr, ``error: ...``, with exit code 2; other legato errors
exit 1. ``--debug`` adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

import click

from legato import __version__
from legato.cli.ai import ai_group
from legato.cli.alerts import alert_group
from legato.cli.artifacts import artifacts_cmd
from legato.cli.automations import automation_group
from legato.cli.backfill import backfill_cmd
from legato.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, flags
from legato.cli.db import db_group
from legato.cli.deployments import (
    deploy_cmd,
    deployment_group,
    deployments_cmd,
    trigger_cmd,
)
from legato.cli.events import event_group, events_cmd
from legato.cli.execute import resume_cmd, run_cmd
from legato.cli.fork import fork_cmd
from legato.cli.limits import limit_group
from legato.cli.notify import notify_group
from legato.cli.prompts import prompts_group
from legato.cli.runs import cancel_cmd, logs_cmd, runs_cmd, show_cmd, suspend_cmd
from legato.cli.server import server_cmd
from legato.cli.testcmd import export_cmd, test_group
from legato.cli.variables import variable_group
from legato.cli.watch import watch_cmd
from legato.cli.webhooks import webhook_group
from legato.cli.worker import worker_cmd, workers_cmd
from legato.cli.wrap import wrap_cmd
from legato.errors import (
    AmbiguousRunIdError,
    ConfigurationError,
    DeploymentNotFoundError,
    InvalidRunInputError,
    LegatoError,
    ParameterValidationError,
    RunNotFoundError,
    RunStateError,
    TargetNotFoundError,
)

# Errors in what the user asked for, as opposed to failures while doing it.
USAGE_ERRORS: tuple[type[LegatoError], ...] = (
    AmbiguousRunIdError,
    ConfigurationError,
    DeploymentNotFoundError,
    InvalidRunInputError,
    ParameterValidationError,
    RunNotFoundError,
    RunStateError,
    TargetNotFoundError,
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.version_option(__version__, "-V", "--version", prog_name="legato")
def cli(debug: bool) -> None:
    """legato: durable Python workflows.

    Run flows, look at their runs and task runs, and resume what failed or
    paused. State lives in $LEGATO_HOME/legato.db (default ~/.legato), or
    wherever LEGATO_DATABASE_URL points.

    \b
    Examples:
      legato run flows/etl.py:etl -p day=2026-11-22
      legato runs --state failed
      legato show 3f2a
      legato resume 3f2a
    """
    if debug:
        flags.debug = True
    from legato.settings import prefect_shim_enabled

    if prefect_shim_enabled():
        # Every command that imports flow code (deploy, run, resume, trigger...)
        # then serves `import prefect` from legato.
        from legato.prefect_shim import install

        install()


for _command in (
    run_cmd,
    runs_cmd,
    show_cmd,
    logs_cmd,
    resume_cmd,
    fork_cmd,
    cancel_cmd,
    suspend_cmd,
    worker_cmd,
    workers_cmd,
    deploy_cmd,
    deployments_cmd,
    deployment_group,
    trigger_cmd,
    backfill_cmd,
    limit_group,
    variable_group,
    notify_group,
    webhook_group,
    watch_cmd,
    artifacts_cmd,
    prompts_group,
    automation_group,
    alert_group,
    db_group,
    event_group,
    events_cmd,
    server_cmd,
    export_cmd,
    test_group,
    wrap_cmd,
    ai_group,
):
    cli.add_command(_command)


def _one_line(text: str) -> str:
    # Messages may carry newlines (pydantic errors, import errors); the policy is one line.
    return " ".join(text.split())


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(code)


def _usage_message(exc: click.ClickException) -> str:
    message = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``legato`` console script and of ``python -m legato``."""
    flags.debug = False
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # standalone_mode=False: errors come back to us instead of click printing
        # its multi-line usage block; commands report their exit code via ctx.exit.
        code = cli.main(args=args, prog_name="legato", standalone_mode=False)
    except click.Abort:
        # Ctrl-C is not an error of the user's; no "error:" prefix.
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        if flags.debug:
            traceback.print_exc()
        _fail(_usage_message(exc), exc.exit_code)
    except LegatoError as exc:
        if flags.debug:
            traceback.print_exc()
        _fail(str(exc), EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILED)
    except Exception as exc:
        if flags.debug:
            traceback.print_exc()
            _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILED)
        _fail(
            f"{type(exc).__name__}: {exc} (run again with --debug for the traceback)",
            EXIT_FAILED,
        )
    sys.exit(code if isinstance(code, int) else 0)
