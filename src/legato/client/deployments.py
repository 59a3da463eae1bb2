"""What the client offers about deployments: create, list, pause, delete, trigger.

Mixed into `legato.client.Client`. Parameters are checked against the flow's
signature before anything is stored: a deployment's defaults at deploy time
(all of them when it has schedules, since scheduled runs get nothing else).
A deploy that loads the flow records its parameter schema, and a triggered run's
complete set is checked against that schema, without importing the flow (see
`legato.client.parameter_schemas`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato.client.checks import (
    INT32_MAX,
    check_deployment_values,
    check_int,
    deployment_problem,
)
from legato.client.parameter_schemas import (
    check_parameters,
    check_schema,
    schema_of_flow,
    with_defaults,
)
from legato.deadlines import Deadline, check_deadlines
from legato.engine.entrypoints import entrypoint_of, load_flow
from legato.engine.params import encode_parameters
from legato.engine.queueing import queue_deployment_run, slot_key
from legato.errors import (
    ConfigurationError,
    DeploymentNotFoundError,
    ScheduleError,
    TargetNotFoundError,
)
from legato.records import CollisionStrategy, Deployment, FlowRun, Schedule, utcnow

if TYPE_CHECKING:
    from legato.automations.deployment_triggers import DeploymentEventTrigger
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


_ENTRYPOINT = re.compile(
    r"(?P<path>[^:]+):(?P<attr>[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)"
)


def _entrypoint_text(target: str) -> tuple[str, str]:
    """An entrypoint taken as written, its flow not loaded (the server never imports
    user code): its form is checked, and the default flow name is its function's."""
    match = _ENTRYPOINT.fullmatch(target) if isinstance(target, str) else None
    if match is None or len(target) > 4096:
        raise ConfigurationError(
            f"{target!r} is not a flow entrypoint; write path/to/file.py:flow_function "
            f"or package.module:flow_function"
        )
    return target, match.group("attr").rpartition(".")[2]


@dataclass(frozen=True)
class _FlowFacts:
    """What a deployment records about its flow."""

    name: str
    parameter_schema: dict[str, Any] | None
    tags: Sequence[str] = ()
    timeout_seconds: float | None = None
    retries: int = 0
    deadlines: tuple[Deadline, ...] = ()
    triggers: tuple[DeploymentEventTrigger, ...] = ()


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
        load_code: bool = True,
        parameter_schema: dict[str, Any] | None = None,
        flow_name: str | None = None,
        deadlines: Sequence[Deadline] | None = None,
        triggers: Sequence[DeploymentEventTrigger | dict[str, Any]] | None = None,
    ) -> Deployment:
        """Create or update the deployment ``name`` of the flow at ``target``.

        The flow is loaded, its parameters checked against its signature, and its
        parameter schema recorded. With ``load_code=False`` (the server, which
        never runs user code) ``target`` is an entrypoint kept as written and
        nothing is imported: ``parameter_schema`` (a JSON Schema, as recorded by
        a deploy that loaded the code), when given, checks the parameters now and
        at every trigger; without it the worker checks them when a run starts.
        ``flow_name`` defaults to the entrypoint's function name. ``deadlines``
        (`legato.Deadline`) are given to each run the deployment queues; None: the
        flow's own (``@flow(deadlines=...)``) when its code is loaded. ``triggers``
        (`legato.DeploymentEventTrigger`, or dicts of its fields) replace the
        deployment's event triggers, each stored as the automation
        ``deployment:<name>:<i>``; None: the flow's own (``@flow(triggers=...)``).
        """
        from legato.automations.deployment_triggers import check_triggers, replace_triggers

        parameters = dict(parameters or {})
        checked_deadlines = check_deadlines(deadlines, f"deployment '{name}'")
        checked_triggers = check_triggers(triggers, f"deployment '{name}'")
        # Numbers and schedules first: nothing is imported or stored when one is bad.
        check_deployment_values(
            name,
            priority=priority,
            concurrency_limit=concurrency_limit,
            schedules=schedules,
            texts={
                "the work queue": work_queue,
                "the tags": list(tags),
                "the description": description,
            },
        )
        if load_code:
            flow, entrypoint = self.check_deployment(target, name, schedules, parameters)
            facts = _FlowFacts(
                flow.name,
                schema_of_flow(flow),
                flow.tags,
                flow.timeout_seconds,
                flow.retries,
                flow.deadlines,
                flow.triggers,
            )
        else:
            entrypoint, facts = self._check_deployment_without_code(
                target, name, schedules, parameters, parameter_schema, flow_name
            )
        # Without its code the flow's own deadlines and triggers are unknown: a deploy
        # that names none keeps what the deployment has (never drops them silently).
        keep_triggers = not load_code and triggers is None
        if not load_code and deadlines is None:
            existing = self.store.get_deployment(name)
            if existing is not None:
                facts = replace(facts, deadlines=existing.deadlines)
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
            flow_name=facts.name,
            entrypoint=entrypoint,
            id=os.urandom(16).hex(),
            parameters=parameters,
            schedules=tuple(schedules),
            work_queue=work_queue,
            priority=priority,
            tags=tuple(dict.fromkeys([*facts.tags, *tags])),
            concurrency_limit=concurrency_limit,
            collision_strategy=strategy,
            description=description,
            catchup=catchup,
            created=now,
            updated=now,
            timeout_seconds=facts.timeout_seconds,
            retries=facts.retries,
            parameter_schema=facts.parameter_schema,
            deadlines=checked_deadlines if deadlines is not None else facts.deadlines,
        )
        saved = self.store.save_deployment(deployment, now=now)
        if not keep_triggers:
            own = checked_triggers if triggers is not None else facts.triggers
            replace_triggers(self.store, saved.name, own)
        return saved

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

    def _check_deployment_without_code(
        self,
        target: str | Flow[Any, Any],
        name: str,
        schedules: Sequence[Schedule],
        parameters: dict[str, Any],
        parameter_schema: dict[str, Any] | None,
        flow_name: str | None,
    ) -> tuple[str, _FlowFacts]:
        """`check_deployment` for a flow that is not loaded: the parameters are
        checked against ``parameter_schema`` when there is one."""
        from legato.schedules import check_schedule

        check_deployment_name(name)
        if not isinstance(target, str):
            raise ConfigurationError("a deployment made without loading code needs an entrypoint")
        entrypoint, default_name = _entrypoint_text(target)
        if flow_name is not None and (not flow_name.strip() or len(flow_name) > 200):
            raise ConfigurationError(
                f"the flow name {flow_name[:200]!r} of deployment '{name}' must be 1 to 200 "
                f"characters (leave it out to use the entrypoint's function name)"
            )
        schema = None if parameter_schema is None else check_schema(parameter_schema, name)
        check_parameters(
            schema, parameters, flow_name=flow_name or default_name, partial=not schedules
        )
        if encode_parameters(parameters)[1] is not None:
            raise ConfigurationError(
                f"the parameters of deployment '{name}' must be plain JSON values "
                f"(strings, numbers, booleans, lists, objects) so any worker can read them"
            )
        for schedule in schedules:
            check_schedule(schedule)
        return entrypoint, _FlowFacts(flow_name or default_name, schema)

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
        """Remove the deployment and its triggers (their automations); its runs stay,
        with their deployment's name."""
        from legato.automations.deployment_triggers import delete_triggers

        if not self.store.delete_deployment(name):
            raise DeploymentNotFoundError(name)
        delete_triggers(self.store, name)

    def trigger(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> FlowRun:
        """Queue a run of deployment ``name`` for workers, due ``at`` (default now).

        The deployment's parameters, overridden by ``parameters``, are checked
        against the parameter schema recorded when it was deployed:
        `ParameterValidationError` and nothing queued when they do not fit.
        """
        deployment = self.get_deployment(name)
        merged = {**deployment.parameters, **(parameters or {})}
        # Checked against the schema recorded at deploy time: the flow's code is
        # not imported here (this may be the server). No schema: the worker checks.
        check_parameters(deployment.parameter_schema, merged, flow_name=deployment.flow_name)
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        run, _ = queue_deployment_run(self.store, deployment, merged, scheduled_time=at)
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
        problem = deployment_problem(deployment)
        if problem is not None:
            raise ConfigurationError(f"deployment '{name}' cannot be backfilled: {problem}")
        start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
        if end < start:
            raise ConfigurationError(
                f"the backfill ends ({end.isoformat()}) before it starts ({start.isoformat()})"
            )
        if concurrency is not None:
            check_int(concurrency, "the backfill concurrency", low=1, high=INT32_MAX)
        if start == datetime.min.replace(tzinfo=UTC):
            start += timedelta(microseconds=1)
        after = start - timedelta(microseconds=1)  # slots_between excludes its start
        slots: set[datetime] = set()
        for schedule in deployment.schedules:
            # Lazily, at most one slot past the cap: refusing a backfill of ten years
            # of minutes reads 10,001 slots, not five million.
            slots.update(slots_between(schedule, after, end, limit=max_runs + 1))
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

    def parameter_schema(self, name: str) -> dict[str, Any] | None:
        """The JSON Schema of deployment ``name``'s flow parameters, recorded when it
        was deployed, with its own parameters as the defaults (for a "run now"
        form); None when none was recorded (a deployment made through the API
        without one). Never loads the flow's code."""
        deployment = self.get_deployment(name)
        if deployment.parameter_schema is None:
            return None
        return with_defaults(deployment.parameter_schema, deployment.parameters)

    def next_scheduled_times(self, deployment: Deployment, count: int = 5) -> list[datetime]:
        """The next ``count`` slots over all of the deployment's schedules."""
        from legato.schedules import next_slots

        now = utcnow()
        found: set[datetime] = set()
        for schedule in deployment.schedules:
            try:
                found.update(next_slots(schedule, now, count))
            except ScheduleError:
                continue  # a bad stored schedule: `deployment_problem` says what is wrong
        return sorted(found)[:count]
