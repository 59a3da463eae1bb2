"""Alert rules: the YAML shape, its check, and its compilation into an automation."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from legato.alerts.limits import parse_rate, parse_window
from legato.automations.model import Automation, EventTrigger, SendNotification
from legato.errors import InvalidAutomationError

PREFIX = "alert:"

#: the short names an alert's `on` and `resolve_on` take, and the events they stand for
EVENTS = {
    "flow-run.failed": "legato.flow-run.Failed",
    "flow-run.crashed": "legato.flow-run.Crashed",
    "flow-run.late": "legato.flow-run.Late",
    "flow-run.cancelled": "legato.flow-run.Cancelled",
    "flow-run.completed": "legato.flow-run.Completed",
    "deadline-missed": "legato.flow-run.deadline-missed",
    "worker-offline": "legato.worker.offline",
    "task-run.failed": "legato.task-run.Failed",
    "task-run.crashed": "legato.task-run.Crashed",
}

#: match / group_by kinds: the related resource's role and its id prefix
KINDS = {
    "flow": "legato.flow.",
    "deployment": "legato.deployment.",
    "tag": "legato.tag.",
    "work-queue": "legato.work-queue.",
}
GROUP_KINDS = (*KINDS, "worker", "run")


def event_name(short: str) -> str:
    """The event an alert's ``on`` name stands for: a short name of `EVENTS`, or a full
    event name (``legato.…`` or any name with a dot and a capital, used as it is)."""
    if short in EVENTS:
        return EVENTS[short]
    if short.startswith("legato.") or re.search(r"\.[A-Z]", short):
        return short
    raise ValueError(f"{short!r} is not an alert event; use one of {', '.join(EVENTS)}")


def _kind(name: str) -> str:
    return name.replace("_", "-")


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=190, pattern=r"^[^#]+$")
    description: str = ""
    enabled: bool = True
    on: list[str] = Field(min_length=1)
    match: dict[str, str | list[str]] = Field(default_factory=dict)
    channels: list[str] = Field(min_length=1)
    group_by: list[str] = Field(default_factory=lambda: ["flow"])
    group_window: timedelta = timedelta(0)
    rate_limit: dict[str, str] = Field(default_factory=dict)
    resolve_on: list[str] = Field(default_factory=list)
    template: str | None = None

    @field_validator("on", "resolve_on", "channels", "group_by", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("on", "resolve_on")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        for name in value:
            event_name(name)
        return value

    @field_validator("match", mode="before")
    @classmethod
    def _match(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = {_kind(str(k)): v for k, v in value.items()}
            for kind in value:
                if kind not in KINDS:
                    raise ValueError(f"cannot match on {kind!r}; use {', '.join(KINDS)}")
        return value

    @field_validator("group_by", mode="after")
    @classmethod
    def _group_by(cls, value: list[str]) -> list[str]:
        kinds = [_kind(v) for v in value]
        for kind in kinds:
            if kind not in GROUP_KINDS:
                raise ValueError(f"cannot group by {kind!r}; use {', '.join(GROUP_KINDS)}")
        return kinds

    @field_validator("group_window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> timedelta:
        return parse_window(value)

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        limits = {"*": value} if isinstance(value, str) else value
        if isinstance(limits, dict):
            for limit in limits.values():
                parse_rate(str(limit))
        return limits


def compile_alert(alert: Alert) -> Automation:
    """The automation ``alert:<name>`` that implements ``alert``."""
    names = list(dict.fromkeys(event_name(n) for n in (*alert.on, *alert.resolve_on)))
    match_related: dict[str, str | list[str]] = {}
    task_events = any(n.startswith("legato.task-run.") for n in names)
    # the first condition narrows the trigger (indexed); all are checked by the action,
    # which also finds a task-run event's flow and deployment (its event names neither)
    if alert.match and not task_events:
        kind, wanted = next(iter(alert.match.items()))
        values = [wanted] if isinstance(wanted, str) else wanted
        ids = [f"{KINDS[kind]}{v}" for v in values]
        match_related = {"legato.resource.id": ids[0] if len(ids) == 1 else ids}
    action = SendNotification(
        channels=alert.channels,
        template=alert.template,
        match=alert.match,
        group_by=alert.group_by,
        group_window=alert.group_window,
        rate_limit=alert.rate_limit,
        resolve_on=[event_name(n) for n in alert.resolve_on],
    )
    return Automation(
        name=f"{PREFIX}{alert.name}",
        description=alert.description or f"alert {alert.name}",
        enabled=alert.enabled,
        trigger=EventTrigger(expect=names, match_related=match_related),
        actions=[action],
    )


def parse_alerts(data: Any, *, where: str = "") -> list[Alert]:
    """Alerts from YAML/JSON data: a list of them, or ``{alerts: [...]}``."""
    if isinstance(data, dict) and "alerts" in data:
        data, where = data["alerts"], f"{where}alerts"
    if not isinstance(data, list):
        raise InvalidAutomationError(
            f"{where or 'the document'}: expected a list of alerts, got {type(data).__name__}"
        )
    found = []
    for i, item in enumerate(data):
        if isinstance(item, dict) and True in item:  # YAML 1.1 reads a bare `on:` as true
            item = {("on" if k is True else k): v for k, v in item.items()}
        try:
            found.append(Alert.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{where}[{i}].{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise InvalidAutomationError(f"invalid alert: {problems}") from None
    names = [a.name for a in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidAutomationError(f"alert names appear twice: {', '.join(duplicates)}")
    return found
