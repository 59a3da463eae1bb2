"""``legato worker``: claim queued runs and execute them, each in its own process."""

from __future__ import annotations

import click

from legato.cli.common import debug_option, emit_json, get_client, make_console


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
    type=click.IntRange(1, 10_000),
    default=4,
    show_default=True,
    help="Flow runs executed at once.",
)
@click.option("--name", metavar="NAME", help="Name shown in logs. Default: HOST-PID.")
@click.option(
    "--lease-seconds",
    "lease",
    type=click.FloatRange(1, 86_400),
    default=None,
    help="A run whose process sent no heartbeat for this long is claimed by another "
    "worker. Default: LEGATO_LEASE_SECONDS, else 30.",
)
@click.option(
    "--grace-seconds",
    type=click.FloatRange(0, 86_400),
    default=30.0,
    show_default=True,
    help="On SIGTERM, how long running flows may finish before they are handed back; "
    "after a cancel request, how long a run may take to stop before its process is killed.",
)
@click.option(
    "--warm-runs",
    type=click.IntRange(1, 1_000_000),
    default=None,
    help="Runs of one deployment a child process takes in turn before a fresh one is "
    "forked (module-level state of the flow's file lives on between them); 1: a new "
    "process for every run. Default: 100.",
)
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Do not take part in scheduling (this worker only executes runs).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve this worker's Prometheus metrics (claims, runs started and finished, "
    "children, store timings) at http://HOST:PORT/metrics (needs legato[metrics]).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address of --metrics-port; any other than loopback needs LEGATO_METRICS_TOKEN.",
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
    warm_runs: int | None,
    no_scheduler: bool,
    metrics_port: int | None,
    metrics_host: str,
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
    from legato.worker.worker import DEFAULT_WARM_RUNS

    if metrics_port is not None:
        from legato.metrics import require_prometheus_client

        require_prometheus_client()
    client = get_client(ctx)
    worker = Worker(
        client,
        queues=queues or ("default",),
        concurrency=concurrency,
        name=name,
        lease=lease,
        grace_seconds=grace_seconds,
        run_scheduler=not no_scheduler,
        warm_runs=warm_runs or DEFAULT_WARM_RUNS,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    worker.run()


@click.command("workers")
@click.option("--all", "include_gone", is_flag=True, help="Also workers gone in the last day.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of workers.")
@debug_option
@click.pass_context
def workers_cmd(ctx: click.Context, include_gone: bool, as_json: bool) -> None:
    """List the workers alive now: name, host, queues, runs in progress, last heartbeat.

    \b
    Examples:
      legato workers
      legato workers --all --json
    """
    from legato.client.views import worker_to_dict

    workers = get_client(ctx).workers(include_gone=include_gone)
    if as_json:
        emit_json([worker_to_dict(worker) for worker in workers])
        return
    if not workers:
        click.echo(
            "no workers" + ("" if include_gone else " alive; start one with `legato worker`")
        )
        return
    from rich.table import Table

    from legato.cli.render import format_time

    table = Table(box=None, pad_edge=False)
    for column in ("name", "host", "pid", "queues", "running", "heartbeat", "state"):
        table.add_column(column)
    for worker in workers:
        table.add_row(
            worker.name,
            worker.host,
            str(worker.pid),
            ", ".join(worker.queues),
            f"{worker.running}/{worker.concurrency}",
            format_time(worker.heartbeat_at),
            "stopped" if worker.stopped_at else "alive",
        )
    make_console().print(table)
