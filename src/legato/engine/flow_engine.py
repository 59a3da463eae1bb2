"""Running a flow run: start, replay, retries, timeout, pause, cancellation, hooks.

`FlowExecution` drives one flow run in this process, through as many
attempts as its retries allow. Each attempt starts the run under a fresh
owner token (so a stale attempt cannot write any more), loads the task runs
recorded by earlier attempts for replay, runs the flow body, and records the
outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato import _clock
from legato import tracing as _tracing
from legato.engine import faults as _faults
from legato.engine import results as _results
from legato.engine.context import FLOW_CONTEXT, NAMING_RUN, TASK_CONTEXT, FlowRunContext
from legato.engine.ids import error_info, new_id
from legato.engine.liveness import current_owner
from legato.engine.monitor import get_monitor
from legato.engine.observer import notify
from legato.engine.params import encode_parameters
from legato.engine.returned_states import ending_of, is_state
from legato.engine.timeouts import run_with_timeout
from legato.errors import (
    CancelledRun,
    FlowCancelled,
    FlowCrashed,
    FlowPaused,
    FlowTimeoutError,
    PauseSignal,
    ResultNotSerializableError,
    RunLostError,
    RunOwnershipLost,
    RunStateError,
    RunStopped,
    SleepSignal,
    StoreLost,
    StoreUnavailableError,
)
from legato.futures import LegatoFuture, LegatoFutureList, resolve_futures
from legato.records import FlowRun, LogRecord, PauseInfo, utcnow
from legato.states import RESUMABLE_STATES, State, StateType

if TYPE_CHECKING:
    from legato.engine.observer import RunObserver
    from legato.flows import Flow
    from legato.store.base import Store

# A retry wait wakes this often to notice that the run was cancelled or lost.
_WAIT_SLICE = 0.25

# Return values whose futures are resolved (one level deep, as Prefect does).
_CONTAINERS = (list, tuple, set, dict, LegatoFutureList)


def create_flow_run(
    flow: Flow[Any, Any],
    store: Store,
    params: dict[str, Any],
    *,
    parent: FlowRunContext | None = None,
    parent_call_key: str | None = None,
) -> FlowRun:
    from legato.engine.entrypoints import entrypoint_of
    from legato.tags import TAGS, with_tags

    run_id = new_id()
    json_params, blob = encode_parameters(params)
    run = FlowRun(
        id=run_id,
        flow_name=flow.name,
        name="",
        state=StateType.PENDING,
        parameters=json_params,
        entrypoint=entrypoint_of(flow.fn),
        flow_version=flow.version,
        tags=with_tags(flow.tags, TAGS.get()),
        parent_run_id=parent.run.id if parent is not None else None,
        parent_call_key=parent_call_key,
        created=utcnow(),
        trace_context=_tracing.run_context(),
    )
    run = replace(run, name=_run_name(flow, run, params))
    store.create_flow_run(run, blob)
    if flow.deadlines:  # "scheduled" counts from creation: the run is due now
        from legato.deadlines import run_deadlines

        store.add_run_deadlines(run_deadlines(run.id, flow.deadlines, scheduled=run.created))
    return run


def _run_name(flow: Flow[Any, Any], run: FlowRun, params: dict[str, Any]) -> str:
    if not callable(flow.flow_run_name):
        return flow.run_name_for(params, run.id)
    # A callable reads prefect.runtime.flow_run (flow_name, parameters), as in Prefect.
    token = NAMING_RUN.set(run)
    try:
        return flow.run_name_for(params, run.id)
    finally:
        NAMING_RUN.reset(token)


class FlowExecution:
    """Executes one flow run in this process until it completes, fails, pauses or ends."""

    def __init__(
        self,
        flow: Flow[Any, Any],
        store: Store,
        run: FlowRun,
        params: dict[str, Any],
        *,
        observer: RunObserver | None = None,
        fresh: bool = False,
        claim_token: str | None = None,
        changed_args: str = "error",
    ) -> None:
        self.flow = flow
        self.store = _faults.wrap_store(store) if _faults.ACTIVE is not None else store
        self.run = run
        self.params = params
        # Traces on: the tracer's observer wraps the given one (it sees every task call).
        self.tracer = _tracing.active()
        if self.tracer is not None:
            observer = self.tracer.observer(observer)
        self.observer = observer
        self.fresh = fresh  # created just now: nothing recorded to replay
        # A worker's claim on the run: the first attempt starts only while it holds.
        self.claim_token = claim_token
        self.changed_args = changed_args
        self._retrying = False  # the next start is a flow retry of this execution
        self._waiting: FlowRunContext | None = None  # heartbeats through a retry wait

    # -- attempts -----------------------------------------------------------------

    def _start(self, from_states: Iterable[StateType]) -> FlowRunContext | None:
        """Start an attempt; None when the run was cancelled while awaiting a retry."""
        token = new_id()
        claim, self.claim_token = self.claim_token, None
        before = self.run  # as this process last saw it: what the history line says
        started = self.store.start_flow_run(
            self.run.id,
            current_owner(token),
            from_states=list(from_states),
            now=self.store.clock(),
            expected_owner_token=claim,
        )
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            get_monitor().remove(waiting)
        if started is None:
            current = self.store.get_flow_run(self.run.id)
            owner = current.owner if current is not None else None
            if claim is not None and owner is not None and owner.token != claim:
                raise RunOwnershipLost(self.run.id)
            retrying = self._retrying
            if retrying and current is not None and current.state is StateType.CANCELLED:
                self.run = current
                return None
            state = current.state.value if current else "missing"
            raise RunStateError(
                f"flow run {self.run.id} cannot start: it is {state}; only "
                f"{', '.join(s.value for s in from_states)} runs can be started"
            )
        self.run = started
        recorded = None
        if not self.fresh:
            recorded = {tr.call_key: tr for tr in self.store.list_task_runs(started.id)}
        self.fresh = False  # later attempts replay what this one records
        ctx = FlowRunContext(
            run=started,
            flow=self.flow,
            store=self.store,
            owner_token=token,
            recorded=recorded,
            observer=self.observer,
        )
        ctx.changed_args = self.changed_args
        history = _history_line(before, started, retrying=self._retrying)
        if history is not None:
            ctx.add_log(_run_log(started.id, history))  # written with the next record
        get_monitor().add(ctx)
        if self.tracer is not None:
            self.tracer.attempt_started(before, started)
        if self.observer is not None:
            notify(self.observer.flow_started, started)
        if self.flow.on_running:  # each attempt starts running, as in Prefect
            running = State(StateType.RUNNING, None, utcnow(), started.id)
            run_hooks(self.flow, started, running, self.flow.on_running, self.store)
        return ctx

    def execute(self, from_states: Iterable[StateType]) -> State:
        """Run the flow body (sync flows) through its attempts; returns the final state."""
        states = list(from_states)
        while True:
            ctx = self._start(states)
            if ctx is None:
                return self._cancelled_between_attempts()
            outcome: BaseException | None = None
            value: Any = None
            try:
                value = self._body_sync(ctx)
            except BaseException as exc:
                outcome = exc
            state, retry_in = self._conclude(ctx, value, outcome)
            if self.tracer is not None:
                self.tracer.attempt_ended(self.run, state, outcome, retry_in)
            if retry_in is None:
                return state
            deadline = _clock.monotonic() + retry_in
            while not ctx.lost and (left := deadline - _clock.monotonic()) > 0:
                _clock.sleep(_clock.poll_slice(left, _WAIT_SLICE))  # the monitor keeps heartbeating
            states = [StateType.PENDING]

    async def execute_async(self, from_states: Iterable[StateType]) -> State:
        """Same as `execute`, for ``async def`` flows, on the running event loop."""
        from legato.engine import branches

        uninstall = branches.install()
        try:
            states = list(from_states)
            while True:
                ctx = self._start(states)
                if ctx is None:
                    return self._cancelled_between_attempts()
                outcome: BaseException | None = None
                value: Any = None
                try:
                    value = await self._body_async(ctx)
                except BaseException as exc:
                    outcome = exc
                state, retry_in = self._conclude(ctx, value, outcome)
                if self.tracer is not None:
                    self.tracer.attempt_ended(self.run, state, outcome, retry_in)
                if retry_in is None:
                    return state
                deadline = _clock.monotonic() + retry_in
                while not ctx.lost and (left := deadline - _clock.monotonic()) > 0:
                    await _clock.sleep_async(_clock.poll_slice(left, _WAIT_SLICE))
                states = [StateType.PENDING]
        finally:
            if uninstall is not None:
                uninstall()

    # -- the body -----------------------------------------------------------------

    def _call_args(self) -> tuple[list[Any], dict[str, Any]]:
        return self.flow.parameter_model.call_args(self.params)

    def _body_sync(self, ctx: FlowRunContext) -> Any:
        flow_token = FLOW_CONTEXT.set(ctx)
        task_token = TASK_CONTEXT.set(None)
        try:
            args, kwargs = self._call_args()
            timeout = self.flow.timeout_seconds
            if timeout is None:
                value = self.flow.fn(*args, **kwargs)
            else:
                ctx.deadline = time.monotonic() + timeout
                try:
                    value = run_with_timeout(
                        self.flow.fn, tuple(args), kwargs, timeout, self.flow.name, FlowTimeoutError
                    )
                except FlowTimeoutError:
                    ctx.stopped = True  # the abandoned body stops at its next task call
                    raise
            return self._settle(ctx, value)
        finally:
            TASK_CONTEXT.reset(task_token)
            FLOW_CONTEXT.reset(flow_token)

    async def _body_async(self, ctx: FlowRunContext) -> Any:
        import asyncio

        flow_token = FLOW_CONTEXT.set(ctx)
        task_token = TASK_CONTEXT.set(None)
        try:
            args, kwargs = self._call_args()
            timeout = self.flow.timeout_seconds
            coro = self.flow.fn(*args, **kwargs)
            if timeout is None:
                value = await coro
            else:
                # asyncio.timeout, not wait_for: wait_for would run the body in a task
                # of its own, and so in a call-key branch of its own.
                ctx.deadline = time.monotonic() + timeout
                try:
                    async with asyncio.timeout(timeout):
                        value = await coro
                except TimeoutError:
                    ctx.stopped = True
                    raise FlowTimeoutError(self.flow.name, timeout) from None
            return self._settle(ctx, value)
        finally:
            TASK_CONTEXT.reset(task_token)
            FLOW_CONTEXT.reset(flow_token)

    def _settle(self, ctx: FlowRunContext, value: Any) -> Any:
        """Wait for submitted tasks; resolve futures in the return value."""
        for future in ctx.outstanding:
            future.wait()
        if isinstance(value, LegatoFuture) or type(value) in _CONTAINERS:
            value = resolve_futures(value)
        return value

    # -- outcomes -----------------------------------------------------------------

    def _conclude(
        self, ctx: FlowRunContext, value: Any, outcome: BaseException | None
    ) -> tuple[State, float | None]:
        """Record how the attempt ended; returns (state, seconds before a retry or None)."""
        try:
            if ctx.runner is not None:
                ctx.runner.shutdown(
                    wait=outcome is None or not isinstance(outcome, FlowTimeoutError)
                )
            lost = _store_error(outcome)
            if lost is not None:
                return self._store_lost(lost), None
            if ctx.lost or _run_lost(outcome):
                return self._run_lost(), None
            if isinstance(outcome, RunStopped):  # ended here already (a store outage)
                return State(StateType.CRASHED, str(outcome), utcnow(), self.run.id), None
            try:
                state, retry_in = self._record_outcome(ctx, value, outcome)
            except StoreUnavailableError as exc:  # the final write could not be made
                return self._store_lost(exc), None
            except (RunOwnershipLost, RunStopped):  # taken over before the final write
                return self._run_lost(), None
            if retry_in is not None:
                self._waiting = ctx  # keeps its lease (heartbeats) through the wait
            return state, retry_in
        finally:
            ctx.stopped = True
            if self._waiting is not ctx:
                get_monitor().remove(ctx)

    def _run_lost(self) -> State:
        """This process lost the run: it wrote nothing more; one line says so."""
        error = RunLostError(self.run.id)
        self._log_to_stderr(f"legato: {error}")
        return State(StateType.CRASHED, str(error), utcnow(), self.run.id, _exception=error)

    def _store_lost(self, error: StoreUnavailableError) -> State:
        """The store went away: the run ends here, recorded as far as it got. Once the
        store is back the run reads as crashed (its process is gone) and resumes."""
        self._log_to_stderr(f"legato: flow run {self.run.id}: {error}")
        return State(StateType.CRASHED, str(error), utcnow(), self.run.id, _exception=error)

    def _record_outcome(
        self, ctx: FlowRunContext, value: Any, outcome: BaseException | None
    ) -> tuple[State, float | None]:
        store, run_id, token = self.store, self.run.id, ctx.owner_token
        flow = self.flow
        now = utcnow
        if outcome is None and is_state(value):
            return self._record_returned(ctx, value), None
        if outcome is None:
            stored = None
            if flow.persist_result:
                try:
                    stored = _results.serialize(
                        value, flow.result_serializer, f"flow '{flow.name}'"
                    )
                except ResultNotSerializableError as exc:
                    outcome = exc
            if outcome is None:
                store.finish_flow_run(
                    run_id,
                    token,
                    state=StateType.COMPLETED,
                    now=now(),
                    result=stored,
                    logs=ctx.take_logs(),
                    replayed=ctx.replayed,
                )
                state = State(StateType.COMPLETED, None, now(), run_id, _value=value)
                self._after(ctx, state)
                return state, None
        if isinstance(outcome, PauseSignal):
            pause: PauseInfo = outcome.detail
            waits = f" for {_model_name(pause.input_model)} input" if pause.input_model else ""
            ctx.add_log(
                _run_log(
                    run_id,
                    f"paused at '{pause.key}'{waits}; resume it with `legato resume {run_id}`",
                )
            )
            store.pause_flow_run(
                run_id, token, pause, now=now(), logs=ctx.take_logs(), replayed=ctx.replayed
            )
            paused = FlowPaused(run_id, pause.key, _model_name(pause.input_model))
            state = State(StateType.PAUSED, str(paused), now(), run_id, _exception=paused)
            self._after(ctx, state, signal=outcome)
            return state, None
        if isinstance(outcome, SleepSignal):
            wake = datetime.fromtimestamp(outcome.until, UTC)
            message = f"sleeping until {wake.isoformat(timespec='seconds')}; queued again then"
            store.reschedule_flow_run(
                run_id,
                token,
                scheduled_time=wake,
                message=message,
                logs=ctx.take_logs(),
                replayed=ctx.replayed,
            )
            state = State(StateType.SCHEDULED, message, now(), run_id)
            self._after(ctx, state, signal=outcome)
            return state, None
        if isinstance(outcome, CancelledRun):
            store.finish_flow_run(
                run_id,
                token,
                state=StateType.CANCELLED,
                now=now(),
                message="cancelled on request",
                logs=ctx.take_logs(),
                replayed=ctx.replayed,
            )
            cancelled = FlowCancelled(run_id)
            state = State(StateType.CANCELLED, str(cancelled), now(), run_id, _exception=cancelled)
            self._after(ctx, state)
            return state, None
        return self._record_failure(ctx, outcome)

    def _record_returned(self, ctx: FlowRunContext, returned: State) -> State:
        """The flow returned its own final state: the run ends in it, with its message
        (a returned failure is the code's verdict: no retry)."""
        ending = ending_of(returned, f"flow '{self.flow.name}'")
        run_id, token = self.run.id, ctx.owner_token
        stored = None
        error = ending.error
        if ending.type is StateType.COMPLETED and self.flow.persist_result:
            try:
                stored = _results.serialize(
                    ending.value, self.flow.result_serializer, f"flow '{self.flow.name}'"
                )
            except ResultNotSerializableError as exc:
                ending, error = ending._replace(type=StateType.FAILED, message=str(exc)), exc
        self.store.finish_flow_run(
            run_id,
            token,
            state=ending.type,
            now=utcnow(),
            message=ending.message,
            error=error_info(error) if error is not None else None,
            result=stored,
            logs=ctx.take_logs(),
            replayed=ctx.replayed,
        )
        if ending.type is StateType.CANCELLED:
            error = FlowCancelled(run_id)
        if error is not None:
            state = State(ending.type, ending.message, utcnow(), run_id, _exception=error)
        else:
            state = State(ending.type, ending.message, utcnow(), run_id, _value=ending.value)
        self._after(ctx, state)
        return state

    def _record_failure(
        self, ctx: FlowRunContext, outcome: BaseException
    ) -> tuple[State, float | None]:
        store, run_id, token = self.store, self.run.id, ctx.owner_token
        now = utcnow
        if not isinstance(outcome, Exception):
            # KeyboardInterrupt, SystemExit...: the engine itself is going away.
            store.finish_flow_run(
                run_id,
                token,
                state=StateType.CRASHED,
                now=now(),
                error=error_info(outcome),
                message=f"interrupted by {type(outcome).__name__}",
                logs=ctx.take_logs(),
                replayed=ctx.replayed,
            )
            crashed = FlowCrashed(f"flow run {run_id} crashed: {type(outcome).__name__}")
            state = State(StateType.CRASHED, str(crashed), now(), run_id, _exception=outcome)
            self._after(ctx, state)
            raise outcome
        attempt = ctx.run.attempts
        # retries=N allows N retries after the first attempt: N + 1 attempts in all,
        # counted in the store (retries_used), whichever processes made them.
        retries_left = self.flow.retries - ctx.run.retries_used
        if retries_left > 0 and self._cancel_requested(ctx):
            return self._record_outcome(ctx, None, CancelledRun(run_id))
        if retries_left > 0:
            return self._retry(ctx, outcome, attempt)
        store.finish_flow_run(
            run_id,
            token,
            state=StateType.FAILED,
            now=now(),
            error=error_info(outcome),
            message=f"{type(outcome).__name__}: {outcome}",
            logs=ctx.take_logs(),
            replayed=ctx.replayed,
        )
        state = State(StateType.FAILED, str(outcome), now(), run_id, _exception=outcome)
        self._after(ctx, state)
        return state, None

    def _retry(
        self, ctx: FlowRunContext, outcome: BaseException, attempt: int
    ) -> tuple[State, float | None]:
        """Record a failed attempt that has retries left. A worker's run goes back to
        its queue, due after the delay (the process exits; any worker takes the next
        attempt, with a timeout of its own); any other run waits here, PENDING, its
        lease kept by the monitor's heartbeats."""
        run_id, delay = self.run.id, self.flow.retry_delay_seconds or 0.0
        why = f"attempt {attempt} failed with {type(outcome).__name__}: {outcome}"
        queued = self.run.work_queue is not None and self.run.parent_run_id is None
        wake = self.store.clock() + timedelta(seconds=delay) if queued else None
        message = (
            f"{why}; queued again for a retry at {wake.isoformat(timespec='seconds')}"
            if wake is not None
            else f"{why}; retrying in {delay:g}s"
        )
        ctx.add_log(_run_log(run_id, message, logging.WARNING))
        self.store.retry_flow_run(
            run_id,
            ctx.owner_token,
            error=error_info(outcome),
            message=message,
            wake_at=wake,
            logs=ctx.take_logs(),
            replayed=ctx.replayed,
        )
        self._log_to_stderr(f"flow run {run_id} {message}")
        if wake is not None:
            from legato.store.notifications import RUNS_QUEUED

            self.store.notify(RUNS_QUEUED, self.run.work_queue or "")
            return State(StateType.SCHEDULED, message, utcnow(), run_id), None
        self._retrying = True
        return State(StateType.FAILED, str(outcome), utcnow(), run_id, _exception=outcome), delay

    def _cancel_requested(self, ctx: FlowRunContext) -> bool:
        if ctx.cancel_requested:
            return True
        current = self.store.get_flow_run(self.run.id)
        return current is not None and current.cancel_requested

    def _cancelled_between_attempts(self) -> State:
        cancelled = FlowCancelled(self.run.id)
        state = State(
            StateType.CANCELLED, str(cancelled), utcnow(), self.run.id, _exception=cancelled
        )
        run_hooks(self.flow, self.run, state, self.flow.on_cancellation, self.store)
        return state

    def _after(
        self, ctx: FlowRunContext, state: State, signal: BaseException | None = None
    ) -> None:
        fresh = self.store.get_flow_run(self.run.id) or self.run
        self.run = fresh
        hooks = {
            StateType.COMPLETED: self.flow.on_completion,
            StateType.FAILED: self.flow.on_failure,
            StateType.CANCELLED: self.flow.on_cancellation,
            StateType.CRASHED: self.flow.on_crashed,
        }.get(state.type, [])
        run_hooks(self.flow, fresh, state, hooks, self.store)
        if self.observer is not None:
            notify(self.observer.flow_finished, fresh, state)

    @staticmethod
    def _log_to_stderr(message: str) -> None:
        import sys

        sys.stderr.write(message + "\n")


def run_hooks(
    flow: Flow[Any, Any],
    run: FlowRun,
    state: State,
    hooks: list[Any],
    store: Store | None = None,
) -> None:
    """Call a flow's state hooks; one that raises is reported on stderr and, given the
    ``store``, in the run's logs, and the others still run."""
    import logging
    import sys

    for hook in hooks:
        try:
            hook(flow, run, state)
        except Exception as exc:
            message = (
                f"hook {getattr(hook, '__name__', hook)} of flow '{flow.name}' raised "
                f"{type(exc).__name__}: {exc}"
            )
            sys.stderr.write(message + "\n")
            if store is None:
                continue
            record = LogRecord(
                flow_run_id=run.id,
                timestamp=utcnow(),
                level=logging.ERROR,
                message=message,
                logger="legato.hooks",
            )
            try:
                store.append_logs([record])
            except Exception as lost:  # said on stderr above; this says why not stored
                sys.stderr.write(f"(not stored in the run's logs: {lost})\n")


def _model_name(ref: str | None) -> str | None:
    if ref is None:
        return None
    return ref.rsplit(":", 1)[-1]


def unwrap_state(state: State, return_state: bool) -> Any:
    """What calling a flow returns: the state itself, or its value (raising on failure)."""
    if return_state:
        return state
    return state.result()


def _run_log(run_id: str, message: str, level: int = logging.INFO) -> LogRecord:
    """A line of the run's own history (paused, resumed, retried) in its logs."""
    return LogRecord(
        flow_run_id=run_id, timestamp=utcnow(), level=level, message=message, logger="legato.run"
    )


def _history_line(before: FlowRun, started: FlowRun, *, retrying: bool) -> str | None:
    """What starting this attempt means for the run's history, if anything."""
    owner = started.owner
    where = f" by pid {owner.pid} on {owner.host}" if owner is not None else ""
    if retrying:
        return f"attempt {started.attempts} started (flow retry {started.retries_used}){where}"
    if before.state in RESUMABLE_STATES:
        return f"resumed{where} after it was {before.state.value}; completed calls replay"
    if started.attempts > 1 and before.work_queue is not None:
        return f"attempt {started.attempts} started{where} (taken from queue '{before.work_queue}')"
    return None


def _run_lost(outcome: BaseException | None) -> bool:
    """Did the attempt end because this process lost the run?"""
    if isinstance(outcome, RunOwnershipLost):
        return True
    return isinstance(outcome, RunStopped) and outcome.lost


def _store_error(outcome: BaseException | None) -> StoreUnavailableError | None:
    """The store outage behind ``outcome``, if that is what ended the attempt."""
    seen = 0
    while outcome is not None and seen < 10:
        if isinstance(outcome, StoreLost):
            return outcome.error
        if isinstance(outcome, StoreUnavailableError):
            return outcome
        outcome = outcome.__cause__ or outcome.__context__
        seen += 1
    return None
