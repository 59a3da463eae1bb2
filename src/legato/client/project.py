"""Deployments declared in a project file, ``legato.yaml`` (``legato deploy --all``).

```yaml
deployments:
  - name: nightly-etl
    entrypoint: flows/etl.py:etl        # relative to this file, or pkg.module:flow
    cron: "0 2 * * *"                   # or interval: 3600, or rrule: "FREQ=..."
    timezone: Europe/Paris
    parameters: {day: yesterday}
    work_queue: default
    concurrency_limit: 1
    deadlines: ["1h", "20m:started:cancel"]   # SPAN[:scheduled|started][:alert|cancel]
  - name: report-after-etl              # run when a run of flow `etl` completes
    entrypoint: flows/report.py:report
    triggers:                           # absent: the flow's own @flow(triggers=...)
      - expect: [legato.flow-run.Completed]
        match_related: {flow: etl}      # or deployment: NAME, tag: TAG, or full labels
        parameters: {upstream_run_id: "{{ flow_run_id }}"}
  - name: reports
    entrypoint: flows/reports.py:weekly
    schedules:                          # several schedules, each with its own zone
      - {cron: "0 8 * * MON", timezone: America/New_York}
      - {interval: 86400}
alerts:                                 # optional; see `legato alert apply`
  - name: etl-failures
    on: [flow-run.failed, flow-run.crashed]
    match: {flow: etl}
    channels: [ops-slack]
    group_window: 5m
```

The file is checked as a whole before anything is stored: a mistake anywhere
is reported with where it is, and no deployment is changed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from legato.alerts.rules import parse_alerts
from legato.alerts.service import apply as apply_alerts
from legato.automations.deployment_triggers import DeploymentEventTrigger, check_triggers
from legato.client.checks import check_deployment_values
from legato.deadlines import Deadline, parse_deadline
from legato.errors import ConfigurationError, LegatoError

if TYPE_CHECKING:
    from legato.client import Client
    from legato.records import Deployment, Schedule

PROJECT_FILE = "legato.yaml"


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str | None = None
    interval: float | None = None
    rrule: str | None = None
    timezone: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleSpec:
        given = [k for k in ("cron", "interval", "rrule") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a schedule needs exactly one of cron, interval or rrule")
        return self


class DeploymentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    entrypoint: str
    description: str | None = None
    cron: str | list[str] | None = None
    interval: float | list[float] | None = None
    rrule: str | list[str] | None = None
    timezone: str = "UTC"
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    work_queue: str = "default"
    priority: int = 0
    tags: list[str] = Field(default_factory=list)
    concurrency_limit: int | None = None
    collision_strategy: Literal["enqueue", "cancel_new"] = "enqueue"
    catchup: bool = False
    # legato.Deadline as text, like `legato deploy --deadline`; absent: the flow's own.
    deadlines: list[str] | None = None
    # legato.DeploymentEventTrigger fields (match, match_related, expect, after, for_each,
    # posture, threshold, within, parameters, name, description, enabled); absent: the
    # flow's own.
    triggers: list[dict[str, Any]] | None = None


class ProjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployments: list[DeploymentSpec]
    # alert rules, as `legato alert apply` takes them (legato.alerts.rules.Alert); keys
    # are Any: YAML 1.1 reads a bare `on:` key as true
    alerts: list[dict[Any, Any]] = Field(default_factory=list)


def _many(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _schedules(spec: DeploymentSpec) -> list[Schedule]:
    from legato.schedules import make_schedule

    found = [make_schedule(cron=c, timezone=spec.timezone) for c in _many(spec.cron)]
    found += [make_schedule(interval=i, timezone=spec.timezone) for i in _many(spec.interval)]
    found += [make_schedule(rrule=r, timezone=spec.timezone) for r in _many(spec.rrule)]
    for s in spec.schedules:
        zone = s.timezone or spec.timezone
        found.append(make_schedule(cron=s.cron, interval=s.interval, rrule=s.rrule, timezone=zone))
    return found


def _entrypoint(spec: DeploymentSpec, folder: Path) -> str:
    path, sep, attr = spec.entrypoint.rpartition(":")
    if sep and (path.endswith(".py") or "/" in path or os.sep in path):
        return f"{(folder / path).resolve()}:{attr}"
    return spec.entrypoint


def load_project(path: Path) -> ProjectSpec:
    """The project file, parsed and checked (ConfigurationError saying where)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read {path}: {exc.strerror}; create it (see `legato deploy --help`) or "
            f"pass --file"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(
            f"{path} is not valid YAML: {' '.join(str(exc).split())}"
        ) from None
    try:
        return ProjectSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "top level"
            problems.append(f"{where}: {error['msg']}")
        raise ConfigurationError(f"{path}: " + "; ".join(problems)) from None


def deploy_project(client: Client, path: Path) -> list[Deployment]:
    """Create or update every deployment of the project file; all checked first."""
    project = load_project(path)
    names = [spec.name for spec in project.deployments]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigurationError(f"{path}: deployment name(s) used twice: {', '.join(duplicates)}")
    folder = path.resolve().parent
    try:
        alerts = parse_alerts(project.alerts, where="alerts")
    except LegatoError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    prepared: list[
        tuple[
            DeploymentSpec,
            str,
            Sequence[Schedule],
            list[Deadline] | None,
            tuple[DeploymentEventTrigger, ...] | None,
        ]
    ] = []
    for index, spec in enumerate(project.deployments):
        try:
            entrypoint = _entrypoint(spec, folder)
            schedules = _schedules(spec)
            check_deployment_values(
                spec.name,
                priority=spec.priority,
                concurrency_limit=spec.concurrency_limit,
                schedules=schedules,
                texts={
                    "the work queue": spec.work_queue,
                    "the tags": list(spec.tags),
                    "the description": spec.description,
                },
            )
            client.check_deployment(entrypoint, spec.name, schedules, spec.parameters)
            deadlines = (
                None if spec.deadlines is None else [parse_deadline(d) for d in spec.deadlines]
            )
            triggers = None if spec.triggers is None else check_triggers(spec.triggers, "triggers")
        except LegatoError as exc:
            raise ConfigurationError(f"{path}: deployments.{index} ({spec.name}): {exc}") from None
        prepared.append((spec, entrypoint, schedules, deadlines, triggers))
    apply_alerts(client.store, alerts)
    return [
        client.deploy(
            entrypoint,
            name=spec.name,
            schedules=schedules,
            parameters=spec.parameters,
            work_queue=spec.work_queue,
            priority=spec.priority,
            tags=spec.tags,
            concurrency_limit=spec.concurrency_limit,
            collision_strategy=spec.collision_strategy,
            description=spec.description,
            catchup=spec.catchup,
            deadlines=deadlines,
            triggers=triggers,
        )
        for spec, entrypoint, schedules, deadlines, triggers in prepared
    ]
