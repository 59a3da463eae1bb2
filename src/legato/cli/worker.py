"""``legato worker``: claim queued runs and execute them, each in its own process."""

from __future__ import annotations

import click

from legato.cli.common import debug_option, get_client


@click.command("worker")
@click.option(
    "-q",
    "--queue",
    "queues",
    multiple=True,
    metavar="NAME",
    help="A work queue to take runs from; repeat for several. Default: default.",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Flow runs executed at once.",
)
@click.option("--name", metavar="NAME", help="Name shown in logs. Default: HOST-PID.")
@click.option(
    "--lease-seconds",
    "lease",
    type=click.FloatRange(min=1),
    default=None,
    help="A run whose process sent no heartbeat for this long is claimed by another "
    "worker. Default: LEGATO_LEASE_SECONDS, else 30.",
)
@click.option(
    "--grace-seconds",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="On SIGTERM, how long running flows may finish before they are handed back.",
)
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Do not take part in scheduling (this worker only executes runs).",
)
@debug_option
@click.pass_context
def worker_cmd(
    ctx: click.Context,
    queues: tuple[str, ...],
    concurrency: int,
    name: str | None,
    lease: float | None,
    grace_seconds: float,
    no_scheduler: bool,
) -> None:
    """Execute queued flow runs until stopped (Ctrl-C or SIGTERM).

    Claims runs from its queues (higher priority first, then the earliest due),
    runs each in a subprocess, and resumes runs whose worker died once their
    lease lapses. Every worker also takes part in scheduling: one of them at a
    time (the leader) creates the runs of deployments' schedules.

    \b
    Examples:
      legato worker
      legato worker --queue gpu --queue default --concurrency 8 --name gpu-box-1
    """
    from legato.worker import Worker

    client = get_client(ctx)
    worker = Worker(
        client,
        queues=queues or ("default",),
        concurrency=concurrency,
        name=name,
        lease=lease,
        grace_seconds=grace_seconds,
        run_scheduler=not no_scheduler,
    )
    worker.run()
