"""The actions an automation fires: a registry keyed by action ``type``.

Every action runs with the idempotency key of its row (``firing_id:index``) and
may run more than once (the evaluator died before recording it done): each is
written so that the second run changes nothing. run-deployment queues its run
with `create_flow_run_once`; emit-event uses an event id derived from the key;
the others are compare-and-set state changes that find nothing left to do.

Sending notifications and calling webhooks register here from the notifications
outbox (`register`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from legato._event_records import RESOURCE_ID, Event
from legato.automations import model
from legato.errors import DeploymentNotFoundError, RunStateError
from legato.records import utcnow
from legato.states import StateType

if TYPE_CHECKING:
    from legato.client import Client

FLOW_RUN_PREFIX = "legato.flow-run."


@dataclass(frozen=True, slots=True)
class ActionContext:
    client: Client
    key: str  # the row's idempotency key
    event: Event | None
    automation: dict[str, Any]
    firing: dict[str, Any]

    def template_context(self) -> dict[str, Any]:
        event = self.event.to_dict() if self.event is not None else {}
        return {
            "event": event,
            "automation": self.automation,
            "firing": self.firing,
            "flow_run_id": _event_flow_run(self.event),
        }


def _event_flow_run(event: Event | None) -> str | None:
    """The flow run the event is about, else its related flow run, else None."""
    if event is None:
        return None
    for rid in (event.resource_id, *event.related_ids()):
        if rid.startswith(FLOW_RUN_PREFIX):
            return rid.removeprefix(FLOW_RUN_PREFIX)
    return None


Handler = Callable[[ActionContext, Any], str]
ACTIONS: dict[str, Handler] = {}


def register(action_type: str) -> Callable[[Handler], Handler]:
    """Register the handler of an action type (it returns a one-line result)."""

    def add(handler: Handler) -> Handler:
        ACTIONS[action_type] = handler
        return handler

    return add


def render(value: Any, context: dict[str, Any]) -> Any:
    """``value`` with every string rendered as a sandboxed Jinja2 template."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return env.from_string(item).render(context) if "{" in item else item
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


def _flow_run_id(ctx: ActionContext, given: str | None) -> str:
    if given:
        return given
    found = _event_flow_run(ctx.event)
    if found is not None:
        return found
    raise RunStateError(
        "the action names no flow run and the firing's event is not about one; "
        "give `flow_run_id` in the action"
    )


@register("run-deployment")
def run_deployment(ctx: ActionContext, action: model.RunDeployment) -> str:
    from legato.client.parameter_schemas import check_parameters
    from legato.engine.queueing import queue_deployment_run

    store = ctx.client.store
    deployment = store.get_deployment(action.deployment)
    if deployment is None:
        raise DeploymentNotFoundError(action.deployment)
    merged = {**deployment.parameters, **render(action.parameters, ctx.template_context())}
    check_parameters(deployment.parameter_schema, merged, flow_name=deployment.flow_name)
    event = ctx.event
    name = ctx.automation.get("name", "?")
    cause = f"event {event.event} {event.id}" if event is not None else "a proactive trigger"
    run, new = queue_deployment_run(
        store,
        deployment,
        merged,
        idempotency_key=f"automation:{ctx.key}",
        message=f"triggered by {cause} (automation {name}, firing {ctx.firing.get('id')})",
    )
    _emit_triggered(ctx, deployment.name, run.id, merged)
    return f"flow run {run.id}" + ("" if new else " (created by an earlier attempt)")


def _emit_triggered(
    ctx: ActionContext, deployment: str, run_id: str, parameters: dict[str, Any]
) -> None:
    """``legato.deployment.triggered`` about the deployment, naming the run, the
    automation, the firing and the event that caused it. Its id comes from the
    action's key: a repeated action stores it once."""
    from legato.engine.events import build_event
    from legato.engine.params import encode_parameters

    event = ctx.event
    name = str(ctx.automation.get("name", ""))
    related = [
        {RESOURCE_ID: FLOW_RUN_PREFIX + run_id, "legato.resource.role": "flow-run"},
        {RESOURCE_ID: f"legato.automation.{name}", "legato.resource.role": "automation"},
    ]
    payload = {
        "flow_run_id": run_id,
        "automation": name,
        "firing_id": ctx.firing.get("id"),
        "triggering_event_id": event.id if event is not None else None,
        "triggering_event": event.event if event is not None else None,
        "parameters": encode_parameters(parameters)[0],
    }
    triggered = build_event(
        "legato.deployment.triggered",
        {RESOURCE_ID: f"legato.deployment.{deployment}", "legato.resource.name": deployment},
        related,
        payload,
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"legato-automation-triggered:{ctx.key}")),
        follows=event.id if event is not None else None,
    )
    ctx.client.store.emit_events([triggered])


def _set_paused(ctx: ActionContext, name: str, paused: bool) -> str:
    if not ctx.client.store.set_deployment_paused(name, paused, now=utcnow()):
        raise DeploymentNotFoundError(name)
    return f"deployment {name} {'paused' if paused else 'resumed'}"


@register("pause-deployment")
def pause_deployment(ctx: ActionContext, action: model.PauseDeployment) -> str:
    return _set_paused(ctx, action.deployment, True)


@register("resume-deployment")
def resume_deployment(ctx: ActionContext, action: model.ResumeDeployment) -> str:
    return _set_paused(ctx, action.deployment, False)


@register("cancel-flow-run")
def cancel_flow_run(ctx: ActionContext, action: model.CancelFlowRun) -> str:
    run = ctx.client.cancel_run(_flow_run_id(ctx, action.flow_run_id))
    return f"flow run {run.id} is {run.state.value}"


@register("suspend-flow-run")
def suspend_flow_run(ctx: ActionContext, action: model.SuspendFlowRun) -> str:
    run, requested = ctx.client.suspend_run(_flow_run_id(ctx, action.flow_run_id))
    if not requested:
        return f"flow run {run.id} is {run.state.value}, not running: left as it is"
    return f"flow run {run.id} asked to pause at its next task boundary"


@register("resume-flow-run")
def resume_flow_run(ctx: ActionContext, action: model.ResumeFlowRun) -> str:
    run = ctx.client.get_run(_flow_run_id(ctx, action.flow_run_id))
    if run.state is not StateType.PAUSED:
        return f"flow run {run.id} is {run.state.value}, not paused: nothing to resume"
    return f"flow run {ctx.client.requeue_run(run.id).id} resumed"


@register("retry-flow-run")
def retry_flow_run(ctx: ActionContext, action: model.RetryFlowRun) -> str:
    run = ctx.client.get_run(_flow_run_id(ctx, action.flow_run_id))
    if run.state not in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
        return f"flow run {run.id} is {run.state.value}: nothing to retry"
    return f"flow run {ctx.client.retry_run(run.id).id} queued again"


@register("emit-event")
def emit_event(ctx: ActionContext, action: model.EmitEvent) -> str:
    from legato.engine.events import build_event

    data = render(action.model_dump(), ctx.template_context())
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"legato-automation:{ctx.key}"))
    event = build_event(
        data["event"], data["resource"], data["related"], data["payload"], id=event_id
    )
    ctx.client.store.emit_events([event])
    return f"event {event_id} ({event.event} about {event.resource[RESOURCE_ID]})"
