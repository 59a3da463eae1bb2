"""`legato export RUN` and `legato test replay`: a recorded run as JSON, and a check that
the current code of a flow still replays it."""

from __future__ import annotations

import json

import click

from legato.cli.common import EXIT_FAILED, EXIT_OK, debug_option, get_client


@click.command("export")
@click.argument("run_id", metavar="RUN")
@click.option("--logs", "include_logs", is_flag=True, help="Include the run's log lines.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the export to this file instead of standard output.",
)
@debug_option
@click.pass_context
def export_cmd(ctx: click.Context, run_id: str, include_logs: bool, output: str | None) -> None:
    """Export one flow run as versioned JSON: the run, its parameters, and its task runs in
    order with call keys, task names, argument fingerprints, states and stored results
    (base64). Use it to check code changes in CI with `legato test replay run.json mod:flow`.
    RUN is a run id or any unambiguous prefix of one.

    \b
    Examples:
      legato export 3f2a > run.json
      legato export 3f2a --logs -o run.json
    """
    from legato.client.export import export_run

    client = get_client(ctx)
    run = client.resolve_run(run_id)
    text = json.dumps(
        export_run(client.store, run.id, include_logs=include_logs),
        indent=2,
        ensure_ascii=False,
        default=str,
    )
    if output is None:
        click.echo(text)
        return
    with open(output, "w", encoding="utf-8") as out:
        out.write(text + "\n")


@click.group("test")
def test_group() -> None:
    """Check flows against recorded runs."""


@test_group.command("replay")
@click.argument("source", metavar="RUN_ID_OR_EXPORT")
@click.argument("target", metavar="MOD:FLOW")
@debug_option
@click.pass_context
def replay_cmd(ctx: click.Context, source: str, target: str) -> None:
    """Replay a recorded run against the current code of its flow, without running any task,
    and report where the code now diverges: a new call, a recorded call the code no longer
    makes, another task or other arguments at a call key, another final state or result.
    Exits 0 when the code matches the recording, 1 otherwise.

    RUN_ID_OR_EXPORT is a file written by `legato export` (no store needed) or a run id of
    the store. MOD:FLOW names the flow: "package.module:flow" or "path/file.py:flow". The
    replay runs in a throwaway store; the recorded run's store is only read.

    \b
    Examples:
      legato export 3f2a > run.json
      legato test replay run.json flows/etl.py:etl
    """
    import os

    from legato.testing.replay import load_recording, replay

    if os.path.isfile(source):
        recording = load_recording(source)
    else:
        recording = load_recording(source, get_client(ctx).store)
    report = replay(recording, target)
    for line in report.lines():
        click.echo(line)
    ctx.exit(EXIT_OK if report.ok else EXIT_FAILED)
