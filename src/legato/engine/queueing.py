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

from legato.engine.ids import new_id
from legato.engine.params import encode_parameters
from legato.records import Deployment, FlowRun, utcnow
from legato.states import StateType
from legato.store.base import Store


def queue_deployment_run(
    store: Store,
    deployment: Deployment,
    parameters: dict[str, Any],
    *,
    scheduled_time: datetime | None = None,
    idempotency_key: str | None = None,
    flow_version: str | None = None,
) -> tuple[FlowRun, bool]:
    """Store a scheduled run of ``deployment``; (the run, whether it is new).

    With an ``idempotency_key`` (a schedule slot) the run is created once,
    however many processes try.
    """
    run_id = new_id()
    json_params, blob = encode_parameters(parameters)
    now = utcnow()
    run = FlowRun(
        id=run_id,
        flow_name=deployment.flow_name,
        name=f"{deployment.name}-{run_id[:8]}",
        state=StateType.SCHEDULED,
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
    )
    if idempotency_key is not None:
        return store.create_flow_run_once(run, blob)
    store.create_flow_run(run, blob)
    return run, True
