"""The automation spec: a trigger and actions (pydantic; stored as JSON)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from legato.errors import InvalidAutomationError

LabelValue = str | list[str]


class Posture(StrEnum):
    REACTIVE = "Reactive"
    PROACTIVE = "Proactive"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventTrigger(_Spec):
    """Fires on (Reactive) or on the absence of (Proactive) events; see docs/architecture.md."""

    type: Literal["event"] = "event"
    match: dict[str, LabelValue] = Field(default_factory=dict)
    match_related: dict[str, LabelValue] = Field(default_factory=dict)
    expect: list[str] = Field(default_factory=list)
    after: list[str] = Field(default_factory=list)
    for_each: list[str] = Field(default_factory=list)
    posture: Posture = Posture.REACTIVE
    threshold: int = Field(default=1, ge=1)
    within: timedelta = timedelta(0)

    @field_validator("within")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("within must be 0 (no window) or a positive number of seconds")
        return value

    @field_validator("expect", "after")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or "*" in name[:-1]:
                raise ValueError(f"{name!r}: an event name, or a prefix ending in '*'")
        return value

    def model_post_init(self, context: Any, /) -> None:
        if self.posture is Posture.PROACTIVE and self.within <= timedelta(0):
            raise ValueError("a Proactive trigger needs `within` (how long to wait), e.g. 3600")


class CompoundTrigger(_Spec):
    """Fires when ``require`` of its triggers (``all``, ``any`` or a number) have fired
    within ``within`` of each other (0: at any time)."""

    type: Literal["compound"]
    triggers: list[EventTrigger] = Field(min_length=2)
    require: Literal["all", "any"] | int = "all"
    within: timedelta = timedelta(0)

    def model_post_init(self, context: Any, /) -> None:
        if isinstance(self.require, int) and not 1 <= self.require <= len(self.triggers):
            raise ValueError(f"require must be 'all', 'any' or 1..{len(self.triggers)}")

    def required(self) -> int:
        if self.require == "all":
            return len(self.triggers)
        return 1 if self.require == "any" else int(self.require)


class SequenceTrigger(_Spec):
    """Fires when its triggers fire in order, the last within ``within`` of the first."""

    type: Literal["sequence"]
    triggers: list[EventTrigger] = Field(min_length=2)
    within: timedelta = timedelta(0)


class MetricTrigger(_Spec):
    """Fires when a metric of the flow runs in ``match`` / ``match_related`` compares
    to ``threshold`` by ``operator`` over the last ``range``, and has for ``firing_for``;
    with ``resolve``, fires again (resolved) when it stops holding. Computed from the
    run tables every few seconds (`legato.automations.metrics`), not per event."""

    type: Literal["metric"]
    #: failure_rate: (failed + crashed) / finished runs (0..1); duration: seconds from
    #: start to end of finished runs; lateness: seconds from scheduled to started (or
    #: to now, for runs still waiting); queue_depth: scheduled runs due and not
    #: claimed, per work queue
    metric: Literal["failure_rate", "duration", "lateness", "queue_depth"]
    #: duration and lateness: which of the window's values is compared
    statistic: Literal["p50", "p95", "max"] = "p95"
    match: dict[str, LabelValue] = Field(default_factory=dict)
    match_related: dict[str, LabelValue] = Field(default_factory=dict)
    operator: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    range: timedelta = timedelta(minutes=10)
    #: failure_rate and duration: only the latest ``last`` finished runs of the range
    last: int | None = Field(default=None, ge=1)
    #: failure_rate, duration, lateness: fewer runs than this in the range: no value
    min_runs: int = Field(default=1, ge=1)
    firing_for: timedelta = timedelta(0)
    resolve: bool = False

    @field_validator("range")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("range must be a positive window, e.g. 600 or PT10M")
        return value

    @field_validator("firing_for")
    @classmethod
    def _not_negative_for(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("firing_for must be 0 (at once) or a positive number of seconds")
        return value


def _trigger_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "event"))
    return str(getattr(value, "type", "event"))


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[CompoundTrigger, Tag("compound")]
    | Annotated[SequenceTrigger, Tag("sequence")]
    | Annotated[MetricTrigger, Tag("metric")],
    Discriminator(_trigger_kind),
]


class RunDeployment(_Spec):
    type: Literal["run-deployment"] = "run-deployment"
    deployment: str
    parameters: dict[str, Any] = Field(default_factory=dict)


class PauseDeployment(_Spec):
    type: Literal["pause-deployment"] = "pause-deployment"
    deployment: str


class ResumeDeployment(_Spec):
    type: Literal["resume-deployment"] = "resume-deployment"
    deployment: str


class _FlowRunAction(_Spec):
    #: the run; None: the event's flow-run resource, else its related flow run
    flow_run_id: str | None = None


class CancelFlowRun(_FlowRunAction):
    type: Literal["cancel-flow-run"] = "cancel-flow-run"


class SuspendFlowRun(_FlowRunAction):
    type: Literal["suspend-flow-run"] = "suspend-flow-run"


class ResumeFlowRun(_FlowRunAction):
    type: Literal["resume-flow-run"] = "resume-flow-run"


class RetryFlowRun(_FlowRunAction):
    type: Literal["retry-flow-run"] = "retry-flow-run"


class EmitEvent(_Spec):
    type: Literal["emit-event"] = "emit-event"
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)


class SendNotification(_Spec):
    """Send a message to channels through the outbox; the grouping, rate limit and
    resolve options make it an alert (see `legato.alerts`)."""

    type: Literal["send-notification"] = "send-notification"
    channels: list[str] = Field(min_length=1)
    template: str | None = None
    #: related-resource conditions beyond the trigger's (kind: value), e.g. {"tag": "nightly"}
    match: dict[str, LabelValue] = Field(default_factory=dict)
    #: what events are grouped by (flow, deployment, tag, work-queue, worker, run)
    group_by: list[str] = Field(default_factory=lambda: ["flow"])
    group_window: timedelta = timedelta(0)
    #: channel name (or "*") -> "N/PERIOD", e.g. "10/h"
    rate_limit: dict[str, str] = Field(default_factory=dict)
    #: event names that resolve the group's open alert
    resolve_on: list[str] = Field(default_factory=list)

    @field_validator("channels", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _every_channel(cls, value: Any) -> Any:
        return {"*": value} if isinstance(value, str) else value

    @field_validator("group_window")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("group_window must be 0 (no grouping) or a positive duration")
        return value

    def model_post_init(self, context: Any, /) -> None:
        from legato.alerts.limits import parse_rate

        for limit in self.rate_limit.values():
            parse_rate(limit)


class CallWebhook(_Spec):
    """Call a URL with a JSON body (templated) through the outbox, so it is retried."""

    type: Literal["call-webhook"] = "call-webhook"
    url: str | None = None
    url_env: str | None = None
    method: Literal["POST", "PUT", "PATCH", "DELETE"] = "POST"
    body: Any = None
    secret_env: str | None = None

    def model_post_init(self, context: Any, /) -> None:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give the webhook's `url` or `url_env` (a variable naming it)")


Action = Annotated[
    RunDeployment
    | PauseDeployment
    | ResumeDeployment
    | CancelFlowRun
    | SuspendFlowRun
    | ResumeFlowRun
    | RetryFlowRun
    | EmitEvent
    | SendNotification
    | CallWebhook,
    Field(discriminator="type"),
]


class Automation(_Spec):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^#]+$")
    description: str = ""
    enabled: bool = True
    trigger: Trigger
    actions: list[Action] = Field(min_length=1)


def _path(loc: tuple[int | str, ...], prefix: str) -> str:
    path = prefix
    kinds = ("event", "compound", "sequence", "metric")
    loc = tuple(p for i, p in enumerate(loc) if not (i and loc[i - 1] == "trigger" and p in kinds))
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or "(top)"


def parse_automation(data: Any, *, where: str = "") -> Automation:
    """An `Automation` from YAML/JSON data; `InvalidAutomationError` naming each bad path."""
    try:
        return Automation.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_path(tuple(e['loc']), where)}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise InvalidAutomationError(f"invalid automation: {problems}") from None


def parse_action(spec: str) -> Any:
    """A stored action row's spec (JSON) as its action model."""
    from pydantic import TypeAdapter

    return TypeAdapter(Action).validate_json(spec)
