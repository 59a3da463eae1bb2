"""`run_flow` and `resume`: run a flow in a test and get everything it left behind."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from legato.engine.observer import NullObserver
from legato.errors import FlowCrashed, RunStateError, SimulatedCrash
from legato.states import State, StateType

if TYPE_CHECKING:
    from legato.flows import Flow
    from legato.records import FlowRun, LogRecord, TaskRun
    from legato.store.base import Store

_LOG_PAGE = 10_000


@dataclass(frozen=True)
class RunResult:
    """What a flow run left in the store once it ended.

    ``state`` is its final state (holding the exception of a failed run),
    ``result`` its return value (None unless it completed), ``flow_run`` its
    record, ``task_runs`` the records of its task calls in order of first start,
    ``logs`` its log lines.
    """

    state: State
    result: Any
    flow_run: FlowRun
    task_runs: list[TaskRun]
    logs: list[LogRecord]

    @property
    def run_id(self) -> str:
        return self.flow_run.id

    def task_run(self, call_key: str) -> TaskRun:
        """The record of the task call at ``call_key`` (``fetch[2]``)."""
        for record in self.task_runs:
            if record.call_key == call_key:
                return record
        keys = ", ".join(r.call_key for r in self.task_runs) or "none"
        raise KeyError(
            f"flow run {self.flow_run.id} has no task call '{call_key}'; its calls: {keys}"
        )

    @property
    def messages(self) -> list[str]:
        """The log messages, in order."""
        return [log.message for log in self.logs]

    def raise_for_state(self) -> RunResult:
        """Re-raise the run's exception unless it completed; returns self otherwise."""
        if self.state.type is not StateType.COMPLETED:
            error = self.state.result(raise_on_failure=False)
            if isinstance(error, BaseException):
                raise error
            raise RunStateError(
                f"flow run {self.flow_run.id} ended {self.state.type.value}"
                + (f": {self.state.message}" if self.state.message else "")
            )
        return self


class _RunIds(NullObserver):
    """Notes the id of the top-level run (the first one to start)."""

    def __init__(self) -> None:
        self.run_id: str | None = None

    def flow_started(self, run: FlowRun) -> None:
        if self.run_id is None:
            self.run_id = run.id


def _store() -> Store:
    from legato.store import get_default_store

    return get_default_store()


def run_flow(flow: Flow[Any, Any], /, **params: Any) -> RunResult:
    """Run ``flow`` with ``params`` in this process, in the current store, and
    return its `RunResult`. A failed or crashed run does not raise (see
    `RunResult.raise_for_state`); invalid parameters do, before anything runs."""
    from legato.client import Client

    ids = _RunIds()
    store = _store()
    try:
        state = Client(store).run_flow(flow, params, observer=ids)
    except SimulatedCrash:
        state = None
    if ids.run_id is None:
        raise RuntimeError(f"flow '{flow.name}' did not start a run")  # pragma: no cover
    return collect(ids.run_id, state, store)


def resume(run: RunResult | str, flow: Flow[Any, Any] | None = None, **run_input: Any) -> RunResult:
    """Resume a crashed, failed, paused or cancelled run under the same run id, as
    ``legato resume`` does (``run_input``: the input of a paused run); returns its
    new `RunResult`. ``flow`` is found from the run when not given."""
    from legato.engine.calls import find_flow, resume_run

    store = _store()
    run_id = run.flow_run.id if isinstance(run, RunResult) else run
    if flow is None and isinstance(run, RunResult):
        from legato.flows import registered_flow

        flow = registered_flow(run.flow_run.flow_name)
    if flow is None:
        record = store.get_flow_run(run_id)
        flow = find_flow(record) if record is not None else None
    try:
        state = resume_run(run_id, run_input or None, flow=flow, store=store)
    except SimulatedCrash:
        state = None
    return collect(run_id, state, store)


def collect(run_id: str, state: State | None, store: Store) -> RunResult:
    """The `RunResult` of run ``run_id`` as the store has it (``state``: the final
    state the engine returned, None after a simulated crash)."""
    from legato.engine.liveness import reconcile

    record = store.get_flow_run(run_id)
    if record is None:
        raise RuntimeError(f"flow run {run_id} is not in the store")  # pragma: no cover
    record = reconcile(store, record)
    owner = record.owner
    if (
        state is not None
        and state.is_final()
        and record.state is StateType.RUNNING
        and owner is not None
        and owner.pid == os.getpid()
        and record.work_queue is None
    ):
        # The engine gave up on the run without recording its end (the store was
        # unreachable): mark it crashed, as its process exiting would.
        store.transition_flow_run(
            run_id,
            to_state=StateType.CRASHED,
            from_states=[StateType.RUNNING],
            now=store.clock(),
            message=state.message or "the run stopped without recording its end",
            expected_owner_token=owner.token,
        )
        record = store.get_flow_run(run_id) or record
    if state is None:  # a simulated crash: the run reads as crashed, as after a kill
        message = record.state_message or "crashed"
        crashed = FlowCrashed(
            f"flow run {run_id} {record.state.value}: {message}; resume it with "
            f"legato.testing.resume"
        )
        state = State(record.state, message, run_id=run_id, _exception=crashed)
    result = state.result() if state.type is StateType.COMPLETED else None
    logs: list[LogRecord] = []
    after = 0
    while True:
        page = store.read_logs(run_id, after_id=after, limit=_LOG_PAGE)
        logs.extend(page)
        if len(page) < _LOG_PAGE or page[-1].id is None:
            break
        after = page[-1].id
    return RunResult(state, result, record, store.list_task_runs(run_id), logs)
