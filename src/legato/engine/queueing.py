"""Queueing runs for workers: a run of a deployment, due now or later.

The run is stored SCHEDULED in the deployment's work queue with the
deployment's entrypoint, so that whichever worker claims it can load the code
and execute it (`legato.engine.calls.resume_run` runs a scheduled run like any
other). Parameters arrive already validated by the caller and as JSON, the
form a deployment keeps them in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from legato import tracing as _tracing
from legato.engine.ids import new_id
from legato.engine.params import encode_parameters
from legato.records import CollisionStrategy, Deployment, FlowRun, utcnow
from legato.states import StateType
from legato.store.base import Store


def slot_key(deployment: Deployment, slot_iso: str) -> str:
    """The idempotency key of a schedule slot's run: one run per slot, ever."""
    return f"{deployment.name}@{slot_iso}"


def queue_deployment_run(
    store: Store,
    deployment: Deployment,
    parameters: dict[str, Any],
    *,
    scheduled_time: datetime | None = None,
    idempotency_key: str | None = None,
    flow_version: str | None = None,
    concurrency: tuple[str, int] | None = None,
    message: str | None = None,
) -> tuple[FlowRun, bool]:
    """Store a scheduled run of ``deployment``; (the run, whether it is new).

    With an ``idempotency_key`` (a schedule slot) the run is created once,
    however many processes try. The run counts against the deployment's
    concurrency limit, or against ``concurrency`` (key, limit) when given (a
    backfill's own). A deployment at its limit with the ``cancel_new``
    strategy gets the run stored cancelled, saying why. ``message``: the
    scheduled state's message (why the run was queued, e.g. the event that
    triggered it).
    """
    run_id = new_id()
    json_params, blob = encode_parameters(parameters)
    now = utcnow()
    if concurrency is None and deployment.concurrency_limit is not None:
        concurrency = (f"deployment:{deployment.name}", deployment.concurrency_limit)
    state, end_time = StateType.SCHEDULED, None
    if (
        concurrency is not None
        and deployment.collision_strategy is CollisionStrategy.CANCEL_NEW
        and _active_runs(store, deployment.name, concurrency[1]) >= concurrency[1]
    ):
        state, end_time = StateType.CANCELLED, now
        message = (
            f"cancelled on arrival: deployment '{deployment.name}' already has "
            f"{concurrency[1]} active run(s), its concurrency limit (strategy cancel_new)"
        )
    run = FlowRun(
        id=run_id,
        flow_name=deployment.flow_name,
        name=f"{deployment.name}-{run_id[:8]}",
        state=state,
        state_message=message,
        end_time=end_time,
        parameters=json_params,
        entrypoint=deployment.entrypoint,
        flow_version=flow_version,
        tags=deployment.tags,
        created=now,
        work_queue=deployment.work_queue,
        priority=deployment.priority,
        scheduled_time=scheduled_time or now,
        deployment=deployment.name,
        idempotency_key=idempotency_key,
        concurrency_key=None if concurrency is None else concurrency[0],
        concurrency_limit=None if concurrency is None else concurrency[1],
        trace_context=_tracing.run_context(),  # run_deployment inside a flow: its trace
    )
    if idempotency_key is not None:
        run, new = store.create_flow_run_once(run, blob)
    else:
        store.create_flow_run(run, blob)
        new = True
    if deployment.deadlines and not run.state.is_final:
        # Stored again by whoever finds the run (kept as they were): a creator that
        # died before this line leaves them to the next one trying the same slot.
        from legato.deadlines import run_deadlines

        due_from = run.scheduled_time or run.created
        store.add_run_deadlines(run_deadlines(run.id, deployment.deadlines, scheduled=due_from))
    return run, new


def _active_runs(store: Store, deployment: str, limit: int) -> int:
    active = (StateType.PENDING, StateType.RUNNING)
    return len(store.list_flow_runs(limit=limit, states=active, deployment=deployment))
