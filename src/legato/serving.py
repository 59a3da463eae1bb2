"""`Flow.deploy`, `Flow.serve` and `Flow.from_source`: deployments from Python,
for people porting from Prefect.

Sugar over `legato.client.Client.deploy` and `legato.worker.Worker`; these are
the only places where the authoring layer reaches up into the client, and they
import it lazily so `import legato` stays light.

Prefect's arguments are taken as Prefect 3 spells them: ``work_pool_name`` (and
``work_queue_name``) name legato's work queue, ``paused`` pauses the
deployment's schedules, ``global_limit`` and ``limit`` of ``serve`` are the
deployment's concurrency limit and the worker's concurrency. What builds or
ships images (``image``, ``build=True``, ``push=True``, ``job_variables``) is
refused with one line: legato runs flows from their source with workers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.errors import ConfigurationError

if TYPE_CHECKING:
    from legato.deadlines import Deadline
    from legato.flows import Flow
    from legato.records import Deployment, Schedule

_NO_IMAGES = (
    "legato runs flows from their source with workers (no images); leave it out and "
    "start `legato worker` where the code is"
)
# Prefect arguments that only change what Prefect prints: accepted, nothing to do.
_PRINTING = frozenset({"print_next_steps", "ignore_warnings", "print_starting_message"})


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


def _refuse(what: str, unknown: dict[str, Any], known: str) -> None:
    """Refuse Prefect options legato has no use for, and names it does not know."""
    for name, value in unknown.items():
        if name in _PRINTING:
            continue
        if name in ("image", "build", "push", "job_variables"):
            if value is None or value is False or (name == "job_variables" and value == {}):
                continue
            raise ConfigurationError(f"{what}({name}={value!r}) is not supported: {_NO_IMAGES}")
        if name == "enforce_parameter_schema":
            if value is True:
                continue
            raise ConfigurationError(
                f"{what}(enforce_parameter_schema={value!r}) is not supported: legato always "
                "checks a deployment's parameters against its flow; leave it out"
            )
        raise ConfigurationError(f"{what}() got an unknown argument {name!r}; it takes: {known}")


def _queue(
    work_queue: str | None, work_pool_name: str | None, work_queue_name: str | None
) -> str | None:
    """legato's one work queue from legato's and Prefect's names for it."""
    given = {
        k: v
        for k, v in (
            ("work_queue", work_queue),
            ("work_pool_name", work_pool_name),
            ("work_queue_name", work_queue_name),
        )
        if v is not None
    }
    if len(set(given.values())) > 1:
        shown = ", ".join(f"{k}={v!r}" for k, v in given.items())
        raise ConfigurationError(
            f"{shown} name different queues; legato has one level of work queue "
            "(workers take runs from it): give one of them"
        )
    return next(iter(given.values()), None)


_DEPLOY_ARGS = (
    "name, work_pool_name (legato's work queue), work_queue_name, cron, interval, rrule, "
    "schedules, timezone, parameters, paused, tags, description, version, "
    "concurrency_limit, priority, collision_strategy, catchup, deadlines, triggers, build=False, "
    "push=False"
)


def deploy_flow(
    flow: Flow[Any, Any],
    name: str,
    *,
    cron: str | Sequence[str] | None = None,
    interval: float | Sequence[float] | None = None,
    rrule: str | Sequence[str] | None = None,
    schedules: Sequence[Schedule] | None = None,
    timezone: str = "UTC",
    parameters: dict[str, Any] | None = None,
    work_queue: str | None = None,
    work_pool_name: str | None = None,
    work_queue_name: str | None = None,
    priority: int = 0,
    tags: Sequence[str] | None = None,
    concurrency_limit: int | None = None,
    collision_strategy: str = "enqueue",
    description: str | None = None,
    catchup: bool = False,
    paused: bool | None = None,
    version: str | None = None,
    deadlines: Sequence[Deadline] | None = None,
    triggers: Sequence[Any] | None = None,
    _what: str = "deploy",
    **others: Any,
) -> Deployment:
    """Create or update the deployment ``name`` of ``flow``. ``version`` is accepted
    and not recorded: a deployment runs the source its entrypoint names."""
    from legato.client import Client
    from legato.records import Schedule

    _refuse(_what, others, _DEPLOY_ARGS)
    del version
    made = _schedules(cron, interval, rrule, timezone)
    for schedule in schedules or ():
        if not isinstance(schedule, Schedule):
            raise ConfigurationError(
                f"{_what}(schedules=...) takes legato schedules (legato.schedules."
                f"make_schedule), not {type(schedule).__name__}; or use cron=, interval=, rrule="
            )
        made.append(schedule)
    client = Client()
    deployment = client.deploy(
        flow,
        name=name,
        schedules=made,
        parameters=parameters,
        work_queue=_queue(work_queue, work_pool_name, work_queue_name) or "default",
        priority=priority,
        tags=tags or (),
        concurrency_limit=concurrency_limit,
        collision_strategy=collision_strategy,
        description=description or flow.description,
        catchup=catchup,
        deadlines=deadlines,
        triggers=triggers,
    )
    if paused is True and not deployment.paused:
        deployment = client.pause_deployment(name)
    elif paused is False and deployment.paused:
        deployment = client.resume_deployment(name)
    return deployment


def serve_flow(
    flow: Flow[Any, Any],
    name: str | None = None,
    *,
    concurrency: int | None = None,
    limit: int | None = None,
    global_limit: int | None = None,
    work_queue: str | None = None,
    work_pool_name: str | None = None,
    work_queue_name: str | None = None,
    **deploy_options: Any,
) -> None:
    """Deploy ``flow`` and run a worker for it here until Ctrl-C / SIGTERM.

    ``name`` defaults to the flow's name; ``limit`` (Prefect's) is ``concurrency``
    (default 4); ``global_limit`` is the deployment's ``concurrency_limit``."""
    from legato.client import Client
    from legato.worker import Worker

    if concurrency is not None and limit is not None and concurrency != limit:
        raise ConfigurationError(
            f"serve(concurrency={concurrency!r}, limit={limit!r}) disagree; give one of them"
        )
    if global_limit is not None:
        if deploy_options.get("concurrency_limit", global_limit) != global_limit:
            raise ConfigurationError(
                "serve(global_limit=..., concurrency_limit=...) disagree; give one of them"
            )
        deploy_options["concurrency_limit"] = global_limit
    name = name or flow.name
    queue = _queue(work_queue, work_pool_name, work_queue_name) or name
    deployment = deploy_flow(flow, name, work_queue=queue, _what="serve", **deploy_options)
    workers = concurrency if concurrency is not None else limit
    Worker(
        Client(),
        queues=[deployment.work_queue],
        concurrency=4 if workers is None else workers,
    ).run()


def flow_from_source(source: object, entrypoint: object) -> Flow[Any, Any]:
    """The flow at ``entrypoint`` (``path/to/file.py:function``, relative to the local
    folder ``source``); it deploys with that file's absolute path as its entrypoint."""
    from legato.engine.entrypoints import load_flow

    if isinstance(source, str) and ("://" in source or source.startswith("git@")):
        raise ConfigurationError(
            f"Flow.from_source({source!r}) is not supported: legato loads flows from a local "
            "folder; clone or copy the code where the workers run and pass that folder"
        )
    if not isinstance(source, str | os.PathLike):
        raise ConfigurationError(
            f"Flow.from_source() takes a local folder, not a {type(source).__name__}: legato "
            "has no remote storage; put the code where the workers run and pass that folder"
        )
    folder = Path(source).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigurationError(
            f"Flow.from_source({str(source)!r}): no such folder; pass the folder that holds "
            "the flow's code"
        )
    if not isinstance(entrypoint, str) or not entrypoint.rpartition(":")[0].endswith(".py"):
        raise ConfigurationError(
            f"Flow.from_source(entrypoint={entrypoint!r}): write path/to/file.py:flow_function, "
            "the path relative to the source folder"
        )
    path, _, attr = entrypoint.rpartition(":")
    return load_flow(f"{folder / path}:{attr}")
