"""Tasks called outside any flow: each call runs as a tracked task run inside an
implicit flow run of its own.

The task_runs table needs a flow run, so a task called (or submitted, or
mapped) with no flow run current gets one: a flow run named after the task,
tagged `STANDALONE_TAG`, run through the ordinary flow engine
(`engine.calls.call_flow`). Its body makes the task call exactly as a flow
body would, so retries, timeouts, caching, hooks, tags and result persistence
apply unchanged, and the flow run ends in the task's state. The caller gets
what a plain call gives: the value, or the task's own exception.

The implicit flows are built once per task name and kind of call and are not
registered by name (a user's flow of the same name keeps its place); what
each run calls is handed to its body in `_CALL`.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from legato.engine.context import FLOW_CONTEXT
from legato.states import State, StateType
from legato.task_runners import TaskHandle

if TYPE_CHECKING:
    from legato.flows import Flow
    from legato.tasks import Task

# The flow-run tag of the implicit flow run around a task called outside a flow.
STANDALONE_TAG = "standalone-task"


class _Pending:
    """One standalone call, as its implicit flow run's body reads it."""

    __slots__ = ("args", "handoff", "kwargs", "method", "return_state", "state", "task", "wait_for")

    def __init__(
        self,
        task: Task[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Sequence[Any] | None,
        *,
        method: str = "call",
        return_state: Any = False,
        handoff: TaskHandle | None = None,
    ) -> None:
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.wait_for = wait_for
        self.method = method
        self.return_state = return_state
        self.handoff = handoff  # submit/map: the futures (or the error) for the caller
        self.state: State | None = None  # call: the task run's final state


_CALL: contextvars.ContextVar[_Pending | None] = contextvars.ContextVar(
    "legato_standalone_call", default=None
)
_FLOWS: dict[tuple[str, str], Flow[Any, Any]] = {}


def _pending() -> tuple[_Pending, Any]:
    pending = _CALL.get()
    flow_ctx = FLOW_CONTEXT.get()
    if pending is None or flow_ctx is None:  # only the engine calls these bodies
        from legato.errors import TaskCallError

        raise TaskCallError(
            "the implicit flow run of a standalone task call started without its call; "
            "this is a legato bug: please report it with the traceback"
        )
    _CALL.set(None)  # a flow called inside the task is a subflow, not this call again
    return pending, flow_ctx


def _bodies() -> dict[str, Callable[..., Any]]:
    # Defined inside a function: such a flow has no loadable entrypoint.
    from legato.engine.task_engine import TaskCall
    from legato.errors import TaskCallError

    def call() -> State:
        from legato.tasks import _state_of

        pending, flow_ctx = _pending()
        task_call = TaskCall(pending.task, flow_ctx, pending.args, pending.kwargs, pending.wait_for)
        state = _state_of(task_call, task_call.run)
        pending.state = state
        return state  # the flow run ends in the task's state

    async def call_async() -> State:
        from legato.tasks import _async_state_of

        pending, flow_ctx = _pending()
        task_call = TaskCall(pending.task, flow_ctx, pending.args, pending.kwargs, pending.wait_for)
        state = await _async_state_of(task_call.task_run_id, task_call.run_async)
        pending.state = state
        return state

    def submit() -> Any:
        pending, _ = _pending()
        handoff = pending.handoff
        if handoff is None:
            raise TaskCallError(
                "the implicit flow run of a standalone submit started without its caller; "
                "this is a legato bug: please report it with the traceback"
            )
        try:
            submitted = getattr(pending.task, pending.method)(
                *pending.args,
                return_state=pending.return_state,
                wait_for=pending.wait_for,
                **pending.kwargs,
            )
        except BaseException as exc:
            handoff._finish(None, exc)
            raise
        handoff._finish(submitted, None)
        return _ending(submitted)

    return {"call": call, "call_async": call_async, "submit": submit}


def _ending(submitted: Any) -> Any:
    """What the implicit flow returns after a submit or map: futures (settled by the
    flow engine, so a failed task fails the run), or a state the run ends in."""
    if type(submitted) is State:
        return submitted
    if type(submitted) is list and submitted and all(type(s) is State for s in submitted):
        failed = [s for s in submitted if s.type is not StateType.COMPLETED]
        return failed[0] if failed else None
    return submitted


def _implicit_flow(name: str, kind: str) -> Flow[Any, Any]:
    found = _FLOWS.get((name, kind))
    if found is not None:
        return found
    from legato import flows

    previous = flows._registry.get(name)
    built: Flow[Any, Any] = flows.Flow(
        _bodies()[kind],
        name=name,
        tags=[STANDALONE_TAG],
        persist_result=False,  # the task run holds the result
        validate_parameters=False,
    )
    # Not registered by name: resuming a run of a user's flow called `name` must
    # still find that flow.
    with flows._registry_lock:
        if previous is not None:
            flows._registry[name] = previous
        else:
            flows._registry.pop(name, None)
    _FLOWS[(name, kind)] = built
    return built


def _task_outcome(pending: _Pending, flow_state: State, return_state: bool) -> Any:
    state = pending.state
    if state is None:  # the run ended before the task did (the store, an interrupt)
        state = flow_state
    return state if return_state else state.result()


def call_standalone(
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Sequence[Any] | None,
    return_state: bool,
) -> Any:
    """``task(...)`` with no flow run current: the value (or the task's exception,
    or with ``return_state`` its final state); a coroutine for an async task."""
    from legato.engine.calls import call_flow

    pending = _Pending(task, args, kwargs, wait_for)
    if task.is_async:
        flow = _implicit_flow(task.name, "call_async")

        async def run() -> Any:
            token = _CALL.set(pending)
            try:
                flow_state = await call_flow(flow, (), {}, True)
            finally:
                _CALL.reset(token)
            return _task_outcome(pending, flow_state, return_state)

        return run()
    flow = _implicit_flow(task.name, "call")
    token = _CALL.set(pending)
    try:
        flow_state = call_flow(flow, (), {}, True)
    finally:
        _CALL.reset(token)
    return _task_outcome(pending, flow_state, return_state)


def _no_submit(task: Task[Any, Any], flow_state: State) -> BaseException:
    from legato.errors import TaskCallError

    return TaskCallError(
        f"the flow run {flow_state.run_id} of standalone task '{task.name}' ended "
        f"{flow_state.type.value} before it submitted the task; see `legato show "
        f"{flow_state.run_id}`"
    )


def submit_standalone(
    task: Task[Any, Any],
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Sequence[Any] | None,
    return_state: Any,
) -> Any:
    """``task.submit(...)`` / ``task.map(...)`` with no flow run current: an implicit
    flow run, on a thread of its own, submits them; its futures come back at once.
    The thread is not a daemon, so the run is recorded to its end before exit."""
    from legato.engine.calls import call_flow

    flow = _implicit_flow(task.name, "submit")
    handoff = TaskHandle()
    pending = _Pending(
        task, args, kwargs, wait_for, method=method, return_state=return_state, handoff=handoff
    )
    context = contextvars.copy_context()

    def work() -> None:
        _CALL.set(pending)
        try:
            flow_state = call_flow(flow, (), {}, True)
        except BaseException as exc:
            if not handoff.done():
                handoff._finish(None, exc)
            else:
                sys.stderr.write(
                    f"legato: the flow run of standalone task '{task.name}' ended with "
                    f"{type(exc).__name__}: {exc}\n"
                )
            return
        if not handoff.done():  # the run ended before its body submitted anything
            handoff._finish(None, flow_state._exception or _no_submit(task, flow_state))

    thread = threading.Thread(
        target=context.run, args=(work,), name=f"legato-standalone-{task.name}"
    )
    thread.start()
    return handoff.result()
