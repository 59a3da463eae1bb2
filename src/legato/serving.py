"""`Flow.deploy` and `Flow.serve`: deployments from Python, for people porting from Prefect.

Sugar over `legato.client.Client.deploy` and `legato.worker.Worker`; these are
the only places where the authoring layer reaches up into the client, and they
import it lazily so `import legato` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.flows import Flow
    from legato.records import Deployment, Schedule


def _schedules(
    cron: str | Sequence[str] | None,
    interval: float | Sequence[float] | None,
    rrule: str | Sequence[str] | None,
    timezone: str,
) -> list[Schedule]:
    from legato.schedules import make_schedule

    def many(value: Any) -> list[Any]:
        if value is None:
            return []
        return [value] if isinstance(value, str | int | float) else list(value)

    return [
        *(make_schedule(cron=c, timezone=timezone) for c in many(cron)),
        *(make_schedule(interval=float(i), timezone=timezone) for i in many(interval)),
        *(make_schedule(rrule=r, timezone=timezone) for r in many(rrule)),
    ]


def deploy_flow(
    flow: Flow[Any, Any],
    name: str,
    *,
    cron: str | Sequence[str] | None = None,
    interval: float | Sequence[float] | None = None,
    rrule: str | Sequence[str] | None = None,
    timezone: str = "UTC",
    parameters: dict[str, Any] | None = None,
    work_queue: str = "default",
    priority: int = 0,
    tags: Sequence[str] = (),
    concurrency_limit: int | None = None,
    collision_strategy: str = "enqueue",
    description: str | None = None,
    catchup: bool = False,
) -> Deployment:
    from legato.client import Client

    client = Client()
    return client.deploy(
        flow,
        name=name,
        schedules=_schedules(cron, interval, rrule, timezone),
        parameters=parameters,
        work_queue=work_queue,
        priority=priority,
        tags=tags,
        concurrency_limit=concurrency_limit,
        collision_strategy=collision_strategy,
        description=description or flow.description,
        catchup=catchup,
    )


def serve_flow(
    flow: Flow[Any, Any],
    name: str,
    *,
    concurrency: int = 4,
    work_queue: str | None = None,
    **deploy_options: Any,
) -> None:
    """Deploy ``flow`` and run a worker for it here until Ctrl-C / SIGTERM."""
    from legato.client import Client
    from legato.worker import Worker

    deployment = deploy_flow(flow, name, work_queue=work_queue or name, **deploy_options)
    Worker(Client(), queues=[deployment.work_queue], concurrency=concurrency).run()
