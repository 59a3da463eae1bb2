"""What the client offers about deployments: create, list, pause, delete, trigger.

Mixed into `legato.client.Client`. Parameters are checked against the flow's
signature before anything is stored: a deployment's defaults at deploy time
(all of them when it has schedules, since scheduled runs get nothing else),
the complete set when a run is triggered.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato.engine.entrypoints import entrypoint_of, load_flow
from legato.engine.params import encode_parameters
from legato.engine.queueing import queue_deployment_run, slot_key
from legato.errors import ConfigurationError, DeploymentNotFoundError, TargetNotFoundError
from legato.records import CollisionStrategy, Deployment, FlowRun, Schedule, utcnow

if TYPE_CHECKING:
    from legato.flows import Flow
    from legato.store.base import Store

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def check_deployment_name(name: str) -> str:
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ConfigurationError(
            f"invalid deployment name {name!r}: use letters, digits, '.', '_' and '-' "
            f"(up to 128 characters, starting with a letter or digit)"
        )
    return name


def _entrypoint(target: str | Flow[Any, Any]) -> tuple[Flow[Any, Any], str]:
    """The flow, and the entrypoint other processes load it by."""
    if isinstance(target, str):
        flow = load_flow(target)
        path, _, attr = target.rpartition(":")
        if path.endswith(".py") or "/" in path or os.sep in path:
            # Workers may start elsewhere: keep the file by its absolute path.
            return flow, f"{os.path.abspath(os.path.expanduser(path))}:{attr}"
        return flow, target
    entrypoint = entrypoint_of(target.fn)
    if entrypoint is None:
        raise TargetNotFoundError(
            f"flow '{target.name}' is defined where another process cannot import it "
            f"(inside a function, a class or a notebook); move it to a module or file "
            f"at top level to deploy it"
        )
    return target, entrypoint


class DeploymentOps:
    """The deployment methods of `legato.client.Client`."""

    @property
    def store(self) -> Store:  # provided by Client
        raise NotImplementedError

    def deploy(
        self,
        target: str | Flow[Any, Any],
        *,
        name: str,
        schedules: Sequence[Schedule] = (),
        parameters: dict[str, Any] | None = None,
        work_queue: str = "default",
        priority: int = 0,
        tags: Sequence[str] = (),
        concurrency_limit: int | None = None,
        collision_strategy: CollisionStrategy | str = CollisionStrategy.ENQUEUE,
        description: str | None = None,
        catchup: bool = False,
    ) -> Deployment:
        """Create or update the deployment ``name`` of the flow at ``target``."""
        parameters = dict(parameters or {})
        flow, entrypoint = self.check_deployment(target, name, schedules, parameters)
        if concurrency_limit is not None and concurrency_limit < 1:
            raise ConfigurationError(
                f"concurrency limit {concurrency_limit} of deployment '{name}' must be at "
                f"least 1 (leave it out for no limit)"
            )
        try:
            strategy = CollisionStrategy(collision_strategy)
        except ValueError:
            choices = ", ".join(s.value for s in CollisionStrategy)
            raise ConfigurationError(
                f"unknown collision strategy {collision_strategy!r}; use one of: {choices}"
            ) from None
        if not work_queue or not work_queue.strip():
            raise ConfigurationError("the work queue name must not be empty")
        now = utcnow()
        deployment = Deployment(
            name=name,
            flow_name=flow.name,
            entrypoint=entrypoint,
            id=os.urandom(16).hex(),
            parameters=parameters,
            schedules=tuple(schedules),
            work_queue=work_queue,
            priority=priority,
            tags=tuple(dict.fromkeys([*flow.tags, *tags])),
            concurrency_limit=concurrency_limit,
            collision_strategy=strategy,
            description=description,
            catchup=catchup,
            created=now,
            updated=now,
            timeout_seconds=flow.timeout_seconds,
            retries=flow.retries,
        )
        return self.store.save_deployment(deployment, now=now)

    def check_deployment(
        self,
        target: str | Flow[Any, Any],
        name: str,
        schedules: Sequence[Schedule],
        parameters: dict[str, Any],
    ) -> tuple[Flow[Any, Any], str]:
        """Check a deployment before storing anything: its name, that its flow loads,
        its schedules, and its parameters against the flow's signature (all of them
        when it has schedules: scheduled runs get nothing else). Returns the flow
        and the entrypoint workers will load it by."""
        from legato.schedules import check_schedule

        check_deployment_name(name)
        flow, entrypoint = _entrypoint(target)
        flow.parameter_model.validate(
            parameters, coerce=flow.validate_parameters, partial=not schedules
        )
        if encode_parameters(parameters)[1] is not None:
            raise ConfigurationError(
                f"the parameters of deployment '{name}' must be plain JSON values "
                f"(strings, numbers, booleans, lists, objects) so any worker can read them"
            )
        for schedule in schedules:
            check_schedule(schedule)
        return flow, entrypoint

    def deploy_project(self, path: str | os.PathLike[str] = "legato.yaml") -> list[Deployment]:
        """Create or update every deployment declared in a project file (see
        `legato.client.project`); the whole file is checked before anything is stored."""
        from pathlib import Path

        from legato.client.project import deploy_project

        return deploy_project(self, Path(path))  # type: ignore[arg-type]  # a mixin of Client

    def deployments(self) -> list[Deployment]:
        return self.store.list_deployments()

    def get_deployment(self, name: str) -> Deployment:
        found = self.store.get_deployment(name)
        if found is None:
            raise DeploymentNotFoundError(name)
        return found

    def pause_deployment(self, name: str) -> Deployment:
        """Stop creating scheduled runs (runs already queued stay queued)."""
        if not self.store.set_deployment_paused(name, True, now=utcnow()):
            raise DeploymentNotFoundError(name)
        return self.get_deployment(name)

    def resume_deployment(self, name: str) -> Deployment:
        if not self.store.set_deployment_paused(name, False, now=utcnow()):
            raise DeploymentNotFoundError(name)
        return self.get_deployment(name)

    def delete_deployment(self, name: str) -> None:
        """Remove the deployment; its runs stay, with their deployment's name."""
        if not self.store.delete_deployment(name):
            raise DeploymentNotFoundError(name)

    def trigger(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> FlowRun:
        """Queue a run of deployment ``name`` for workers, due ``at`` (default now).

        The deployment's parameters, overridden by ``parameters``, are checked
        against the flow's signature first: `ParameterValidationError` and
        nothing queued when they do not fit.
        """
        deployment = self.get_deployment(name)
        flow = load_flow(deployment.entrypoint)
        merged = {**deployment.parameters, **(parameters or {})}
        flow.parameter_model.validate(merged, coerce=flow.validate_parameters)
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        run, _ = queue_deployment_run(
            self.store, deployment, merged, scheduled_time=at, flow_version=flow.version
        )
        return run

    def backfill(
        self,
        name: str,
        start: datetime,
        end: datetime,
        *,
        concurrency: int | None = None,
        max_runs: int = 10_000,
    ) -> list[tuple[FlowRun, bool]]:
        """Queue a run for every slot of the deployment's schedules in [start, end].

        A slot that already has a run (from the scheduler or an earlier
        backfill) keeps it: (run, False). ``concurrency`` caps how many of
        this backfill's runs execute at once (default: the deployment's
        limit). Refuses more than ``max_runs`` slots.
        """
        from legato.schedules import slots_between

        deployment = self.get_deployment(name)
        if not deployment.schedules:
            raise ConfigurationError(
                f"deployment '{name}' has no schedule, so it has no slots to backfill; "
                f"queue runs with `legato trigger {name} --at TIME` instead"
            )
        start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
        if end < start:
            raise ConfigurationError(
                f"the backfill ends ({end.isoformat()}) before it starts ({start.isoformat()})"
            )
        if concurrency is not None and concurrency < 1:
            raise ConfigurationError(f"backfill concurrency {concurrency} must be at least 1")
        after = start - timedelta(microseconds=1)  # slots_between excludes its start
        slots: set[datetime] = set()
        for schedule in deployment.schedules:
            slots.update(slots_between(schedule, after, end))
            if len(slots) > max_runs:
                raise ConfigurationError(
                    f"the backfill of '{name}' from {start.isoformat()} to {end.isoformat()} "
                    f"would queue more than {max_runs:,} runs; split it into shorter ranges"
                )
        group = None if concurrency is None else (f"backfill:{os.urandom(8).hex()}", concurrency)
        return [
            queue_deployment_run(
                self.store,
                deployment,
                dict(deployment.parameters),
                scheduled_time=slot,
                idempotency_key=slot_key(deployment, slot.isoformat()),
                concurrency=group,
            )
            for slot in sorted(slots)
        ]

    def parameter_schema(self, name: str) -> dict[str, Any]:
        """The JSON Schema of deployment ``name``'s flow parameters, its own
        parameters as the defaults (for a "run now" form). Loads the flow's code:
        TargetNotFoundError when it is not importable here."""
        deployment = self.get_deployment(name)
        schema = load_flow(deployment.entrypoint).parameter_model.json_schema()
        properties = schema.get("properties") or {}
        for key, value in deployment.parameters.items():
            if key in properties:
                properties[key] = {**properties[key], "default": value}
        schema["required"] = [
            key for key in schema.get("required") or [] if key not in deployment.parameters
        ]
        return schema

    def next_scheduled_times(self, deployment: Deployment, count: int = 5) -> list[datetime]:
        """The next ``count`` slots over all of the deployment's schedules."""
        from legato.schedules import next_slots

        now = utcnow()
        found = sorted(
            {slot for schedule in deployment.schedules for slot in next_slots(schedule, now, count)}
        )
        return found[:count]
