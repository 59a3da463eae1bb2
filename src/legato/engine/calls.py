"""Entry points into the engine: calling a flow (top level or as a subflow) and
resuming a stored run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from legato.engine import faults as _faults
from legato.engine.context import FLOW_CONTEXT, FlowRunContext, current_scope
from legato.engine.flow_engine import FlowExecution, create_flow_run, run_hooks, unwrap_state
from legato.engine.ids import error_info
from legato.engine.liveness import reconcile
from legato.engine.params import decode_parameters
from legato.errors import (
    ConfigurationError,
    InvalidRunInputError,
    NonDeterministicFlowError,
    PauseSignal,
    RunNotFoundError,
    RunStateError,
    TargetNotFoundError,
)
from legato.records import FlowRun, PauseInfo, utcnow
from legato.states import RESUMABLE_STATES, State, StateType
from legato.store import get_default_store

if TYPE_CHECKING:
    from legato.engine.observer import RunObserver
    from legato.flows import Flow
    from legato.store.base import Store

START_STATES = (StateType.PENDING, StateType.SCHEDULED)
# What replay does with a completed call whose arguments changed (resume_run).
CHANGED_ARGS_POLICIES = ("error", "replay", "rerun")
# The run input where `requeue_run` leaves the policy for the worker that resumes.
CHANGED_ARGS_KEY = "legato:on-changed-args"
RESUME_STATES = (*RESUMABLE_STATES, StateType.PENDING, StateType.SCHEDULED)


def check_changed_args(policy: str) -> None:
    if policy not in CHANGED_ARGS_POLICIES:
        raise ConfigurationError(
            f"on_changed_args={policy!r} is not one of {', '.join(CHANGED_ARGS_POLICIES)}"
        )


# --- calling a flow ---------------------------------------------------------------


def call_flow(
    flow: Flow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool
) -> Any:
    """What ``flow(*args, **kwargs)`` does: validate, create the run, execute it."""
    params = flow.parameter_model.validate(
        flow.parameter_model.bind(args, kwargs), coerce=flow.validate_parameters
    )
    parent = FLOW_CONTEXT.get()
    if parent is not None:
        if flow.is_async and _in_event_loop():
            return _call_subflow_async(flow, params, parent, return_state)
        return _call_subflow(flow, params, parent, return_state)
    store = get_default_store()
    if _faults.ACTIVE is not None:
        _faults.check_plan()
    run = create_flow_run(flow, store, params)
    execution = FlowExecution(flow, store, run, params, fresh=True)
    if flow.is_async:
        # Like any `async def` function, an async flow returns a coroutine to await.
        return _await_state(execution.execute_async(START_STATES), return_state)
    return unwrap_state(execution.execute(START_STATES), return_state)


async def _await_state(coro: Any, return_state: bool) -> Any:
    return unwrap_state(await coro, return_state)


def _in_event_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_flow_with_observer(
    flow: Flow[Any, Any], params: dict[str, Any], observer: RunObserver | None, store: Store
) -> State:
    """Run a top-level flow with already-validated parameters; returns its final state."""
    import asyncio

    if _faults.ACTIVE is not None:
        _faults.check_plan()
    run = create_flow_run(flow, store, params)
    execution = FlowExecution(flow, store, run, params, observer=observer, fresh=True)
    if flow.is_async:
        return asyncio.run(execution.execute_async(START_STATES))
    return execution.execute(START_STATES)


# --- subflows -----------------------------------------------------------------------


def _prepare_subflow(
    flow: Flow[Any, Any], params: dict[str, Any], parent: FlowRunContext
) -> FlowExecution | State:
    """The execution to run for this subflow call, or the state it replays to."""
    parent.check_cancelled()
    call_key = current_scope(parent).next_key(flow.name)
    store = parent.store
    existing = (
        store.find_child_run(parent.run.id, call_key) if parent.recorded is not None else None
    )
    if existing is None:
        run = create_flow_run(flow, store, params, parent=parent, parent_call_key=call_key)
        return FlowExecution(
            flow,
            store,
            run,
            params,
            observer=parent.observer,
            fresh=True,
            changed_args=parent.changed_args,
        )
    if existing.flow_name != flow.name:
        raise NonDeterministicFlowError(parent.run.id, call_key, existing.flow_name, flow.name)
    existing = reconcile(store, existing)
    if existing.state is StateType.COMPLETED and existing.has_result:
        from legato.engine.results import deserialize

        value = deserialize(store.get_flow_result(existing.id), f"subflow run {existing.id}")
        return State(StateType.COMPLETED, run_id=existing.id, _value=value)
    if existing.state is StateType.CRASHED:
        crashed = State(StateType.CRASHED, existing.state_message)
        run_hooks(flow, existing, crashed, flow.on_crashed, store)
    return FlowExecution(
        flow, store, existing, params, observer=parent.observer, changed_args=parent.changed_args
    )


def _subflow_start_states(execution: FlowExecution) -> tuple[StateType, ...]:
    if execution.fresh:
        return START_STATES
    if execution.run.state is StateType.COMPLETED:
        # A completed child that kept no result (persist_result=False) runs again,
        # as a task without a stored result does; its own tasks still replay.
        return (StateType.COMPLETED,)
    return RESUME_STATES


def _subflow_state(execution: FlowExecution, state: State, return_state: bool) -> Any:
    if state.type is StateType.PAUSED:
        # Pause the parent too, at "child_id>child_key"; resuming the parent finds
        # this child paused, hands it the input, and resumes it.
        pause = execution.run.pause
        key = f"{execution.run.id}>{pause.key if pause else 'pause'}"
        raise PauseSignal(
            key,
            PauseInfo(
                key=key,
                input_model=pause.input_model if pause else None,
                input_schema=pause.input_schema if pause else None,
                timeout_at=pause.timeout_at if pause else None,
            ),
        )
    return unwrap_state(state, return_state)


def _call_subflow(
    flow: Flow[Any, Any], params: dict[str, Any], parent: FlowRunContext, return_state: bool
) -> Any:
    import asyncio

    execution = _prepare_subflow(flow, params, parent)
    if isinstance(execution, State):
        return unwrap_state(execution, return_state)
    from_states = _subflow_start_states(execution)
    if flow.is_async:
        state = asyncio.run(execution.execute_async(from_states))
    else:
        state = execution.execute(from_states)
    return _subflow_state(execution, state, return_state)


async def _call_subflow_async(
    flow: Flow[Any, Any], params: dict[str, Any], parent: FlowRunContext, return_state: bool
) -> Any:
    execution = _prepare_subflow(flow, params, parent)
    if isinstance(execution, State):
        return unwrap_state(execution, return_state)
    from_states = _subflow_start_states(execution)
    state = await execution.execute_async(from_states)
    return _subflow_state(execution, state, return_state)


# --- resuming -------------------------------------------------------------------------


def resume_run(
    run_id: str,
    run_input: dict[str, Any] | None = None,
    *,
    flow: Flow[Any, Any] | None = None,
    observer: RunObserver | None = None,
    store: Store | None = None,
    on_changed_args: str = "error",
) -> State:
    """Re-execute a failed, crashed, paused or cancelled run in this process.

    Completed task calls replay from their stored results; the rest run.
    Input for a paused run is validated before anything runs; invalid input
    raises `InvalidRunInputError` and the run stays paused. A completed call
    whose arguments differ from the recorded ones raises
    `NonDeterministicFlowError` (``on_changed_args="error"``), returns its
    recorded result anyway (``"replay"``) or runs again (``"rerun"``).
    """
    import asyncio

    check_changed_args(on_changed_args)
    store = store or get_default_store()
    found = store.get_flow_run(run_id)
    if found is None:
        raise RunNotFoundError(run_id)
    run = reconcile(store, found)
    if run.state not in RESUME_STATES:
        raise RunStateError(_not_resumable(run))
    flow = flow or find_flow(run)
    if run.state is StateType.PAUSED:
        _accept_input(store, run, run_input)
    elif run_input is not None:
        raise RunStateError(
            f"flow run {run.id} is {run.state.value}, not paused: input only applies to a "
            f"paused run; resume without --input"
        )
    if run.state is StateType.CRASHED:
        run_hooks(flow, run, State(StateType.CRASHED, run.state_message), flow.on_crashed, store)
    params = decode_parameters(run.parameters, store.get_parameters_blob(run.id))
    params = flow.parameter_model.validate(params, coerce=flow.validate_parameters)
    execution = FlowExecution(
        flow, store, run, params, observer=observer, changed_args=on_changed_args
    )
    if flow.is_async:
        return asyncio.run(execution.execute_async(RESUME_STATES))
    return execution.execute(RESUME_STATES)


def execute_claimed_run(run_id: str, claim_token: str, *, store: Store | None = None) -> State:
    """Execute a run a worker claimed (it is PENDING under ``claim_token``) in this process.

    Starts only while the claim holds: if the worker's lease lapsed and another
    worker claimed the run meanwhile, `RunOwnershipLost` is raised and nothing
    runs. A run claimed again after its worker died replays what it recorded.
    """
    import asyncio

    store = store or get_default_store()
    run = store.get_flow_run(run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    try:
        flow = find_flow(run)
        params = decode_parameters(run.parameters, store.get_parameters_blob(run.id))
        params = flow.parameter_model.validate(params, coerce=flow.validate_parameters)
    except Exception as exc:
        # The code cannot be loaded or the parameters no longer fit it: the run
        # fails here, with the reason, rather than crash and be claimed again.
        store.transition_flow_run(
            run_id,
            to_state=StateType.FAILED,
            from_states=[StateType.PENDING],
            now=utcnow(),
            message=f"the worker could not start it: {exc}",
            error=error_info(exc),
            expected_owner_token=claim_token,
        )
        raise
    execution = FlowExecution(flow, store, run, params, claim_token=claim_token)
    if flow.is_async:
        return asyncio.run(execution.execute_async([StateType.PENDING]))
    return execution.execute([StateType.PENDING])


def requeue_run(
    run_id: str,
    run_input: dict[str, Any] | None = None,
    *,
    store: Store | None = None,
    on_changed_args: str = "error",
) -> FlowRun:
    """Resume a worker's run by queueing it again: a worker claims it and replays it.

    Input for a paused run is validated and saved first, as `resume_run` does;
    so is ``on_changed_args``, which the worker's execution reads.
    """
    from legato.store.notifications import RUNS_QUEUED

    check_changed_args(on_changed_args)
    store = store or get_default_store()
    found = store.get_flow_run(run_id)
    if found is None:
        raise RunNotFoundError(run_id)
    run = reconcile(store, found)
    if run.state is StateType.SCHEDULED:
        return run  # already waiting for a worker
    if run.state not in RESUMABLE_STATES:
        raise RunStateError(_not_resumable(run))
    if run.work_queue is None:
        raise RunStateError(
            f"flow run {run.id} was started in a terminal, not from a deployment, so no "
            f"worker can take it: resume it with `legato resume {run.id}` where its code is"
        )
    if run.state is StateType.PAUSED:
        _accept_input(store, run, run_input)
    elif run_input is not None:
        raise RunStateError(
            f"flow run {run.id} is {run.state.value}, not paused: input only applies to a "
            f"paused run; resume without --input"
        )
    # A lapsed run still stored as running is taken over from that state, and
    # only while its owner is the one that went quiet.
    queued = store.transition_flow_run(
        run.id,
        to_state=StateType.SCHEDULED,
        from_states=[found.state],
        now=utcnow(),
        message=f"queued again by resume; a worker of queue '{run.work_queue}' resumes it",
        expected_owner_token=found.owner.token if found.owner is not None else None,
    )
    if not queued:
        current = store.get_flow_run(run.id) or run
        raise RunStateError(_not_resumable(current))
    store.save_run_input(run.id, CHANGED_ARGS_KEY, json.dumps(on_changed_args))
    store.notify(RUNS_QUEUED, run.work_queue)
    return store.get_flow_run(run.id) or run


def resume_flow_run(
    run_id: str, run_input: dict[str, Any] | None = None, *, flow: Flow[Any, Any] | None = None
) -> Any:
    """Resume a run from Python and return its result, as calling the flow does.

    Raises the flow's exception if it fails again, and `FlowPaused` if it pauses
    again. ``flow`` is needed only when the run's code cannot be found by its
    recorded entrypoint (for example a flow defined in a notebook).
    """
    store = get_default_store()
    return unwrap_state(
        resume_run(resolve_run_id(store, run_id), run_input, flow=flow, store=store), False
    )


def resolve_run_id(store: Store, id_or_prefix: str) -> str:
    """The full id of the one run whose id starts with ``id_or_prefix``."""
    from legato.errors import AmbiguousRunIdError

    prefix = id_or_prefix.strip().lower()
    if not prefix:
        raise RunNotFoundError(id_or_prefix)
    matches = store.match_run_ids(prefix, limit=6)
    if not matches:
        raise RunNotFoundError(id_or_prefix)
    if len(matches) > 1:
        if prefix in matches:
            return prefix
        raise AmbiguousRunIdError(id_or_prefix, matches)
    return matches[0]


def _not_resumable(run: FlowRun) -> str:
    if run.state is StateType.COMPLETED:
        return f"flow run {run.id} already completed; there is nothing to resume"
    if run.state is StateType.RUNNING:
        where = f" (pid {run.owner.pid} on {run.owner.host})" if run.owner else ""
        return (
            f"flow run {run.id} is running{where}; wait for it, or cancel it with "
            f"`legato cancel {run.id}` first"
        )
    return f"flow run {run.id} is {run.state.value} and cannot be resumed"


def find_flow(run: FlowRun) -> Flow[Any, Any]:
    """The flow that runs ``run``: defined in this process, or loaded from its entrypoint."""
    from legato.engine.entrypoints import load_flow
    from legato.engine.standalone import STANDALONE_TAG
    from legato.flows import registered_flow

    if STANDALONE_TAG in run.tags and not run.entrypoint:
        # Its flow name is the task's: a flow of that name would be the wrong code.
        raise TargetNotFoundError(
            f"flow run {run.id} ran task '{run.flow_name}' called outside any flow; it cannot "
            f"be resumed: call the task again (its completed calls are cached only with a "
            f"cache policy)"
        )
    if run.entrypoint:
        try:
            return load_flow(run.entrypoint)
        except TargetNotFoundError as exc:
            local = registered_flow(run.flow_name)
            if local is not None:
                return local
            raise TargetNotFoundError(
                f"cannot load the code of flow run {run.id} from '{run.entrypoint}': {exc}"
            ) from exc
    local = registered_flow(run.flow_name)
    if local is not None:
        return local
    raise TargetNotFoundError(
        f"flow run {run.id} has no recorded entrypoint (its flow '{run.flow_name}' was "
        f"defined where another process cannot import it); resume it from Python with "
        f"legato.resume_flow_run('{run.id}', flow=<the flow>)"
    )


def _accept_input(store: Store, run: FlowRun, run_input: dict[str, Any] | None) -> None:
    """Validate the input for a paused run and save it where its pause point reads it."""
    pause = run.pause
    if pause is None:
        return
    target_id, key = run.id, pause.key
    # A key "child_id>inner_key" means a subflow paused; its own pause point gets the input.
    while ">" in key:
        child_id, _, key = key.partition(">")
        target_id = child_id
    if pause.input_model is None:
        if run_input is not None:
            raise InvalidRunInputError(run.id, "nothing", ["this pause does not take input"])
        store.save_run_input(target_id, key, None)
        return
    from pydantic import ValidationError

    from legato.engine.entrypoints import resolve_ref

    model: Any = resolve_ref(pause.input_model)
    name = model.__name__
    if run_input is None:
        fields = model.model_fields
        required = [f for f, info in fields.items() if info.is_required()]
        optional = [f for f in fields if f not in required]
        listed = [f"required fields: {', '.join(required) or 'none'}"]
        if optional:
            listed.append(f"optional: {', '.join(optional)}")
        raise InvalidRunInputError(
            run.id, name, [f"input is required ({'; '.join(listed)}); pass it with --input JSON"]
        )
    try:
        value = model.model_validate(run_input)
    except ValidationError as exc:
        problems = [
            f"'{'.'.join(str(p) for p in e['loc']) or '?'}': {e['msg']}" for e in exc.errors()
        ]
        raise InvalidRunInputError(run.id, name, problems) from None
    store.save_run_input(target_id, key, value.model_dump_json())
