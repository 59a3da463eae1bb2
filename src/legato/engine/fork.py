"""Fork a flow run from a step: a new run of the same flow that replays what the
source recorded before that step and executes the rest again.

"Before" is decided by time, as the source saw it: the source's completed task
runs whose first start is earlier than the first start of the task run at the
fork key, except that key itself, anything under it (``KEY/...``) and the task
runs it is nested in (a completed parent would replay and never reach the key).
The store copies those task runs (their results included) and the model-call
tries recorded at or under them, marking the tries ``copied_from`` the source;
everything else runs again with the code, prompts and models of now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from legato.engine.ids import new_id
from legato.errors import ConfigurationError, RunStateError
from legato.records import FlowRun, LogRecord, TaskRun, utcnow
from legato.states import StateType

if TYPE_CHECKING:
    from legato.store.base import Store

#: The tag a fork carries: ``forked-from:<source run id>``.
FORKED_FROM = "forked-from:"

# How many recorded keys an unknown-key error names.
_KEYS_SHOWN = 8


@dataclass(frozen=True, slots=True)
class ForkPlan:
    """What a fork of ``source`` from ``from_key`` copies: ``call_keys`` replay."""

    source: FlowRun
    from_key: str
    call_keys: tuple[str, ...]


def first_start(task_run: TaskRun) -> datetime | None:
    """When a task run first started (its first attempt's start when it took several)."""
    starts = [a.start_time for a in task_run.attempt_log if a.start_time is not None]
    if task_run.start_time is not None:
        starts.append(task_run.start_time)
    return min(starts) if starts else None


def _related(key: str, other: str) -> bool:
    """``other`` is ``key``, under it, or a parent of it."""
    return other == key or other.startswith(key + "/") or key.startswith(other + "/")


def plan_fork(store: Store, source: FlowRun, from_key: str) -> ForkPlan:
    """The task runs a fork of ``source`` from ``from_key`` replays (see the module).
    `ConfigurationError` naming some recorded keys when the source has none at the key."""
    task_runs = store.list_task_runs(source.id)
    target = next((t for t in task_runs if t.call_key == from_key), None)
    if target is None:
        keys = [t.call_key for t in task_runs]
        shown = ", ".join(keys[:_KEYS_SHOWN]) + (
            f" and {len(keys) - _KEYS_SHOWN} more" if len(keys) > _KEYS_SHOWN else ""
        )
        recorded = f"it recorded {shown}" if keys else "it recorded no task runs"
        raise ConfigurationError(
            f"flow run {source.id} has no step at '{from_key}' ({recorded}); fork from one "
            f"of its call keys (`legato show {source.id}` lists them)"
        )
    cutoff = first_start(target)
    keys = []
    for task_run in task_runs:
        started = first_start(task_run)
        if (
            task_run.state is StateType.COMPLETED
            and started is not None
            and (cutoff is None or started < cutoff)
            and not _related(from_key, task_run.call_key)
        ):
            keys.append(task_run.call_key)
    return ForkPlan(source, from_key, tuple(keys))


def create_fork(store: Store, plan: ForkPlan, *, queue: bool) -> FlowRun:
    """Create the fork (its copied steps and a log line saying what it forked).

    ``queue``: scheduled on the source's work queue for a worker (`RunStateError`
    when the source came from no deployment); otherwise pending, for this process
    to run with `resume_run`."""
    source = plan.source
    if source.parent_run_id is not None:
        raise RunStateError(
            f"flow run {source.id} is a subflow run; fork its parent run "
            f"{source.parent_run_id} instead"
        )
    if queue and source.work_queue is None:
        raise RunStateError(
            f"flow run {source.id} was started in a terminal, not from a deployment, so no "
            f"worker can run its fork: fork it where its code is, with "
            f"`legato fork {source.id} --from '{plan.from_key}'`"
        )
    now = utcnow()
    tags = tuple(t for t in source.tags if not t.startswith(FORKED_FROM))
    fork = FlowRun(
        id=new_id(),
        flow_name=source.flow_name,
        name=f"{source.name}-fork" if source.name else "",
        state=StateType.SCHEDULED if queue else StateType.PENDING,
        parameters=source.parameters,
        entrypoint=source.entrypoint,
        flow_version=source.flow_version,
        tags=(*tags, f"{FORKED_FROM}{source.id}"),
        created=now,
    )
    if queue:
        fork = replace(
            fork,
            work_queue=source.work_queue,
            priority=source.priority,
            scheduled_time=now,
            deployment=source.deployment,
            concurrency_key=source.concurrency_key,
            concurrency_limit=source.concurrency_limit,
        )
    store.fork_flow_run(source.id, fork, store.get_parameters_blob(source.id), plan.call_keys)
    copied = len(plan.call_keys)
    store.append_logs(
        [
            LogRecord(
                flow_run_id=fork.id,
                timestamp=now,
                level=logging.INFO,
                message=(
                    f"forked from flow run {source.id} at '{plan.from_key}': {copied} step"
                    f"{'' if copied == 1 else 's'} recorded before it replay, '{plan.from_key}' "
                    f"and what follows run again"
                ),
            )
        ]
    )
    if fork.work_queue is not None:
        from legato.store.notifications import RUNS_QUEUED

        store.notify(RUNS_QUEUED, fork.work_queue)
    return store.get_flow_run(fork.id) or fork
