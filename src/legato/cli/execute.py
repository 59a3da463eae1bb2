"""``legato run`` and ``legato resume``: execute a run in this process, then report.

Both show the same things: live progress in a terminal, plain lines in a
pipe, one JSON object with ``--json``; and both exit 0 completed, 1 failed,
crashed or cancelled, 2 bad usage, 3 paused.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from legato.cli.common import (
    EXIT_INTERRUPTED,
    debug_option,
    emit_json,
    exit_code_for,
    get_client,
    json_result,
    make_console,
    parse_json_object,
    stdout_is_terminal,
)
from legato.cli.progress import LiveProgress, PlainProgress, RunTracker
from legato.cli.render import plain_summary, summary_lines
from legato.client.views import flow_run_to_dict
from legato.errors import LegatoError, ParameterValidationError, StoreUnavailableError

if TYPE_CHECKING:
    from legato.client import Client
    from legato.states import State

Start = Callable[[RunTracker], "State"]


# --- parameters -----------------------------------------------------------------


def parse_param_pairs(pairs: tuple[str, ...]) -> dict[str, tuple[Any, str]]:
    """``-p NAME=VALUE`` options as ``{name: (value, raw text)}``, later ones winning.

    The value is the JSON reading of the text when it has one (``3`` is an int,
    ``'["a"]'`` a list, ``true`` a bool), else the text itself.
    """
    parsed: dict[str, tuple[Any, str]] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(
                f"expected NAME=VALUE, got {pair!r}", param_hint="'-p' / '--param'"
            )
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        except RecursionError:
            from legato.engine.params import MAX_PARAMETER_DEPTH

            raise click.BadParameter(
                f"the value of {name!r} is nested more than {MAX_PARAMETER_DEPTH} levels "
                f"deep; flatten it or pass a reference (a path, an id) instead",
                param_hint="'-p' / '--param'",
            ) from None
        parsed[name] = (value, raw)
    return parsed


def choose_parameters(
    client: Client,
    flow: Any,
    base: dict[str, Any],
    pairs: dict[str, tuple[Any, str]],
    *,
    partial: bool = False,
) -> dict[str, Any]:
    """``base`` (from ``--params``) overridden by ``-p`` values, validated.

    A ``-p`` text that reads as a JSON number, bool or null may have been meant
    as a string (``-p version=1.10`` for ``version: str``). When the JSON
    reading fails validation, each such parameter is tried as its raw text, and
    kept that way only if that removes a problem. The error reported is the one
    with the fewest problems.
    """
    params = {**base, **{name: value for name, (value, _) in pairs.items()}}
    try:
        client.validate_parameters(flow, params, partial=partial)
        return params
    except ParameterValidationError as exc:
        error = exc
    for name, (value, raw) in pairs.items():
        if not (value is None or isinstance(value, bool | int | float)):
            continue
        trial = {**params, name: raw}
        try:
            client.validate_parameters(flow, trial, partial=partial)
            return trial
        except ParameterValidationError as exc:
            if len(exc.problems) < len(error.problems):
                params, error = trial, exc
    raise error


# --- running ----------------------------------------------------------------------


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While a ``--json`` run executes, whatever it writes to stdout (a ``print`` in
    a flow, a subprocess, a C library) goes to stderr instead, so that stdout
    carries only the JSON object. Done at the file-descriptor level when stdout
    is a real file, because subprocesses write to fd 1, not to ``sys.stdout``."""
    sys.stdout.flush()
    try:
        out_fd = sys.stdout.fileno()
        err_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    saved = os.dup(out_fd)
    try:
        os.dup2(err_fd, out_fd)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, out_fd)
        os.close(saved)


def _final_result(state: State) -> tuple[bool, Any]:
    if not state.is_completed():
        return False, None
    try:
        value = state.result()
    except LegatoError:  # not persisted or not available: report the run without it
        return False, None
    return json_result(value)


def _observer_for(
    as_json: bool, resumed: bool
) -> tuple[RunTracker, contextlib.AbstractContextManager[Any]]:
    """The observer that fits the output mode, and the scope to run it in."""
    if as_json:
        return PlainProgress(announce=False), stdout_to_stderr()
    if stdout_is_terminal():
        live = LiveProgress(make_console(), resumed=resumed)
        return live, live
    return PlainProgress(announce=True, resumed=resumed), contextlib.nullcontext()


def execute(
    ctx: click.Context, client: Client, start: Start, *, as_json: bool, resumed: bool = False
) -> None:
    """Run ``start``, report how the run ended, and exit with its code. ``resumed``:
    the run is resumed, not started, and the output says so."""
    tracker, scope = _observer_for(as_json, resumed)
    try:
        with scope:
            state = start(tracker)
    except KeyboardInterrupt:
        # Ctrl-C: the engine has recorded what it could; say how to pick the run up.
        root = tracker.root
        hint = f"; run {root.id} stopped, resume it with: legato resume {root.id}" if root else ""
        click.echo(f"interrupted{hint}", err=True)
        ctx.exit(EXIT_INTERRUPTED)

    run_id = state.run_id or (tracker.root.id if tracker.root else None)
    lost = state._exception
    if isinstance(lost, StoreUnavailableError):
        # The store is out of reach: nothing more to read from it. One line, exit 1.
        raise lost
    if run_id is None:
        # Nothing recorded to describe; the state is all there is.
        if as_json:
            emit_json({"id": None, "state": state.type.value, "message": state.message})
        else:
            note = f" ({state.message})" if state.message else ""
            click.echo(f"state: {state.type.value}{note}")
        ctx.exit(exit_code_for(state.type))

    run = client.resolve_run(run_id)
    task_runs = client.task_runs(run.id)
    result = _final_result(state)
    if as_json:
        data = flow_run_to_dict(run)
        data["task_counts"] = dict(Counter(tr.state.value for tr in task_runs))
        if result[0]:
            data["result"] = result[1]
        emit_json(data)
    else:
        lines = summary_lines(run, task_runs, result=result)
        if stdout_is_terminal():
            from legato.cli.tables import summary_table

            make_console().print(summary_table(lines), soft_wrap=True)
        else:
            click.echo(plain_summary(lines))
    ctx.exit(exit_code_for(run.state))


# --- commands -----------------------------------------------------------------------


def _install_prefect_shim(asked: bool) -> None:
    """With --prefect or LEGATO_PREFECT_SHIM=1, before the flow's file is imported."""
    from legato.settings import prefect_shim_enabled

    if asked or prefect_shim_enabled():
        from legato.prefect_shim import install

        install()


def _run_plain_script(ctx: click.Context, path: str) -> None:
    """A script without ``@flow``: its ``__main__`` runs as an observed run (exit 1
    with Python's traceback when it raises). A script with flows needs FILE:FLOW."""
    from legato.observed import has_flow_decorator, run_script

    if has_flow_decorator(path):
        return  # the usual error asks for path/to/file.py:flow_function
    try:
        run_id = run_script(path)
    except Exception:
        import traceback

        traceback.print_exc()
        ctx.exit(1)
    click.echo(f"observed run {run_id} completed", err=True)
    ctx.exit(0)


@click.command("run")
@click.argument("target")
@click.option(
    "-p",
    "--param",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A flow parameter; VALUE is read as JSON when it parses (3, true, '[\"a\"]'), "
    "else taken as text. Repeat for more. Overrides --params.",
)
@click.option(
    "--params",
    "params_json",
    metavar="JSON",
    help="Parameters as one JSON object, e.g. '{\"n\": 3}'.",
)
@click.option(
    "--prefect",
    is_flag=True,
    help="Serve `import prefect` in the flow's file from legato, to run Prefect code "
    'unchanged (see README "Running Prefect code"; LEGATO_PREFECT_SHIM=1 does the same).',
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the run.")
@debug_option
@click.pass_context
def run_cmd(
    ctx: click.Context,
    target: str,
    pairs: tuple[str, ...],
    params_json: str | None,
    prefect: bool,
    as_json: bool,
) -> None:
    """Run a flow in this process and wait until it ends.

    TARGET is path/to/file.py:flow_function or package.module:flow_function;
    a script.py without @flow runs its __main__ as an observed run (README:
    Observe existing code). Parameters are validated against the flow's signature first; if one is
    invalid nothing runs.

    Exit code: 0 completed, 1 failed, crashed or cancelled, 2 bad usage or
    invalid parameters, 3 paused (the summary shows how to resume).

    \b
    Examples:
      legato run flows/etl.py:etl -p day=2026-11-22 -p limit=100
      legato run myproject.flows:report --params '{"regions": ["eu", "us"]}' --json
    """
    if ":" not in target and target.endswith(".py") and os.path.isfile(target):
        _run_plain_script(ctx, target)
    base = parse_json_object(params_json, "--params")
    overrides = parse_param_pairs(pairs)
    client = get_client(ctx)
    _install_prefect_shim(prefect)
    flow = client.load_flow(target)
    params = choose_parameters(client, flow, base, overrides)
    execute(
        ctx,
        client,
        lambda observer: client.run_flow(flow, params, observer=observer),
        as_json=as_json,
    )


@click.command("resume")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--input",
    "input_json",
    metavar="JSON",
    help="Input for a run paused with wait_for_input, as a JSON object.",
)
@click.option(
    "--here",
    is_flag=True,
    help="Run a worker's run (one queued from a deployment) in this process instead of "
    "queueing it again for workers.",
)
@click.option(
    "--on-changed-args",
    type=click.Choice(["error", "replay", "rerun"]),
    default="error",
    show_default=True,
    help="What replay does with a completed task call whose arguments differ from the "
    "recorded ones: stop with an error, keep the recorded result, or run the call again.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the run.")
@debug_option
@click.pass_context
def resume_cmd(
    ctx: click.Context,
    run_id: str,
    input_json: str | None,
    here: bool,
    on_changed_args: str,
    as_json: bool,
) -> None:
    """Resume a failed, crashed, cancelled or paused run in this process.

    Completed task calls are replayed from their stored results; the rest run.
    A run from a deployment (one with a work queue) is queued again for the
    workers instead, unless --here is given. RUN is a run id or any
    unambiguous prefix of one. Input that does not
    validate against the paused run's model exits 2 and the run stays paused.
    Output and exit codes are those of `legato run`.

    \b
    Examples:
      legato resume 3f2a9c1e
      legato resume 3f2a9c1e --input '{"approved": true}'
      legato resume 3f2a9c1e --on-changed-args rerun
    """
    run_input = parse_json_object(input_json, "--input") if input_json is not None else None
    client = get_client(ctx)
    _install_prefect_shim(False)
    found = client.resolve_run(run_id)
    from legato.observed import is_observed

    if is_observed(found.tags):
        from legato.errors import ObservedRunError

        raise ObservedRunError(found.id)
    if not here and found.work_queue is not None:
        run = client.requeue_run(run_id, run_input, on_changed_args=on_changed_args)
        if as_json:
            emit_json(flow_run_to_dict(run))
        else:
            click.echo(
                f"flow run {run.id} queued again on '{run.work_queue}'; a worker resumes it "
                f"(completed tasks are replayed, not run again)"
            )
        return
    execute(
        ctx,
        client,
        lambda observer: client.resume_run(
            run_id, run_input, observer=observer, on_changed_args=on_changed_args
        ),
        as_json=as_json,
        resumed=True,
    )
