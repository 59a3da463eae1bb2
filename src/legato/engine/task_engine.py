"""Running one task call: replay, dependencies, caching, retries, timeouts, hooks.

A `TaskCall` is built on the caller's thread, where its call key is handed
out (so keys follow submission order and stay deterministic across resumes),
and executed there (direct calls) or on a task runner thread (``submit``/
``map``). A call whose key already has a completed record returns the stored
result without running. A finished call costs one store write: its final
record, its result and the logs written meanwhile, in one transaction.
"""

from __future__ import annotations

import pickle
import random
import time
from collections.abc import Callable, Sequence
from contextvars import Token
from datetime import datetime
from typing import TYPE_CHECKING, Any

from legato import _clock
from legato.engine import faults as _faults
from legato.engine import replay_only as _replay_only
from legato.engine import results as _results
from legato.engine.attempts import brief, history_before
from legato.engine.commit_pending import CommitPending
from legato.engine.context import BRANCH, TASK_CONTEXT, FlowRunContext, TaskRunContext
from legato.engine.dependencies import COLLECTION_TYPES, PLAIN_TYPES, collect_dependencies
from legato.engine.fingerprint import fingerprint
from legato.engine.ids import error_info, new_task_run_id, short_repr
from legato.engine.limits import limits_among, run_holding, run_holding_async
from legato.engine.observer import notify
from legato.engine.returned_states import ending_of
from legato.engine.timeouts import run_async_with_timeout, run_with_timeout
from legato.engine.transactions import keyed_call
from legato.errors import (
    CancelledRun,
    NonDeterministicFlowError,
    ResultNotSerializableError,
    RunOwnershipLost,
    RunStopped,
    StoreLost,
    StoreUnavailableError,
    TaskArgumentNotPicklableError,
    TaskCallError,
    UpstreamTaskFailedError,
)
from legato.futures import LegatoFuture, LegatoFutureList
from legato.records import AttemptInfo, ErrorInfo, StoredResult, TaskCompletion, TaskRun, utcnow
from legato.settings import args_fingerprint_enabled
from legato.states import State, StateType
from legato.tags import TAGS, with_tags

if TYPE_CHECKING:
    from legato.tasks import Task

# Results of direct calls remembered (by identity) to record data edges.
MAX_TRACKED_RESULTS = 10_000
# Whether task calls record their arguments' fingerprint (LEGATO_ARGS_FINGERPRINT).
FINGERPRINTS = args_fingerprint_enabled()
_pickle_dumps = pickle.dumps
_PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL


class TaskCall:
    """One call of a task inside a flow run."""

    __slots__ = (
        "args",
        "attempt_log",
        "attempt_started",
        "attempts",
        "attempts_this_execution",
        "cache_key",
        "call_key",
        "defer_commit",
        "dependencies",
        "fingerprint",
        "flow_ctx",
        "has_futures",
        "keyed",
        "kwargs",
        "parent_task_run_id",
        "previous",
        "remote_host",
        "result_reference",
        "start_time",
        "tags",
        "task",
        "task_run_id",
        "wait_for",
    )

    def __init__(
        self,
        task: Task[Any, Any],
        flow_ctx: FlowRunContext,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Sequence[Any] | None,
    ) -> None:
        parent = TASK_CONTEXT.get()
        if parent is None and flow_ctx.pause_requested:
            flow_ctx.suspend_if_requested()  # a task call in the flow body: pause here
        if parent is not None and parent.flow_ctx is not flow_ctx:
            parent = None
        # `current_scope(flow_ctx)`, inlined (the task context is already at hand).
        branch = BRANCH.get()
        if branch is not None and branch.flow_ctx is flow_ctx and branch.task_ctx is parent:
            scope = branch.scope
        else:
            scope = parent.scope if parent is not None else flow_ctx.scope
        if task.call_key:
            self.call_key = f"{scope.prefix}{task.call_key}"
            flow_ctx.claim_key(
                "call", self.call_key, f"call_key '{self.call_key}' (task '{task.name}')"
            )
        else:
            self.call_key = scope.next_key(task.name)
        self.task = task
        # The task's tags and those of enclosing `with tags(...)` blocks.
        extra = TAGS.get()
        self.tags = with_tags(task.tags, extra) if extra else task.tags
        self.flow_ctx = flow_ctx
        self.args = args
        self.kwargs = kwargs
        self.wait_for = wait_for
        self.parent_task_run_id = parent.task_run_id if parent is not None else None
        self.previous = flow_ctx.recorded.get(self.call_key) if flow_ctx.recorded else None
        self.task_run_id = self.previous.id if self.previous is not None else new_task_run_id()
        self.attempts = self.previous.attempts if self.previous is not None else 0
        # Filled only when a call takes more than one attempt (see note_retry).
        self.attempt_log: list[AttemptInfo] | None = None
        self.attempt_started: datetime | None = None
        self.cache_key: str | None = None
        self.start_time: datetime | None = None
        self.attempts_this_execution = 0
        # Set by a remote runner's answer (see note_remote_answer).
        self.remote_host: str | None = None
        self.result_reference: StoredResult | None = None
        # Set when submitted to the thread runner: the record may be committed after
        # the call's thread moves on (see complete).
        self.defer_commit = False
        # Before futures in the arguments are resolved: a future counts by its key.
        self.fingerprint = fingerprint(task.parameter_names, args, kwargs) if FINGERPRINTS else None
        self.dependencies, self.has_futures = collect_dependencies(
            args, kwargs, wait_for, task.parameter_names, flow_ctx.result_sources
        )
        # Its place in open keyed transactions (see engine/transactions.py), if any.
        self.keyed = keyed_call(flow_ctx.transactions, task.name) if flow_ctx.transactions else None

    # -- dependencies ---------------------------------------------------------

    def _resolve_inputs(self) -> None:
        """Replace futures in the arguments by their results (waiting for them)."""
        if not self.has_futures and not self.wait_for:
            return
        try:
            if self.wait_for:
                for item in self.wait_for:
                    if isinstance(item, LegatoFuture):
                        self._upstream_value(item)
            if self.has_futures:
                self.args = tuple(self._resolved(a) for a in self.args)
                self.kwargs = {k: self._resolved(v) for k, v in self.kwargs.items()}
        finally:
            # The task's own time starts once its inputs are there.
            self.start_time = utcnow()

    def _resolved(self, value: Any) -> Any:
        if isinstance(value, LegatoFuture):
            return self._upstream_value(value)
        kind = type(value)
        if kind is LegatoFutureList:
            return [self._resolved(v) for v in value]
        if kind in COLLECTION_TYPES:
            return kind(self._resolved(v) for v in value)
        if kind is dict:
            return {k: self._resolved(v) for k, v in value.items()}
        return value

    def _upstream_value(self, future: LegatoFuture[Any]) -> Any:
        state = future.wait_state()
        if state.is_completed():
            return state.result()
        raise UpstreamTaskFailedError(self.task.name, future.call_key, state.type.value)

    # -- replay ---------------------------------------------------------------

    def replayed(self) -> tuple[bool, Any]:
        """(True, value) when an earlier execution completed this call."""
        prev = self.previous
        if prev is None:
            if _replay_only.ACTIVE is not None and _replay_only.ACTIVE.covers(self.flow_ctx):
                return _replay_only.ACTIVE.answer(self)  # `legato test replay`
            return False, None
        if prev.task_name != self.task.name:
            raise NonDeterministicFlowError(
                self.flow_ctx.run.id, self.call_key, prev.task_name, self.task.name
            )
        if prev.state is not StateType.COMPLETED or prev.rolled_back or not prev.has_result:
            return False, None
        recorded_args = prev.args_fingerprint
        if recorded_args is not None and recorded_args != (self.fingerprint or recorded_args):
            policy = self.flow_ctx.changed_args
            if policy == "rerun":
                return False, None
            if policy != "replay":
                raise NonDeterministicFlowError(
                    self.flow_ctx.run.id,
                    self.call_key,
                    prev.task_name,
                    self.task.name,
                    recorded_args=recorded_args,
                    called_args=self.fingerprint,
                )
        stored = self.flow_ctx.store.get_task_result(prev.id)
        value = _results.deserialize(stored, f"task '{self.task.name}' ({self.call_key})")
        self._remember(value, prev)
        self.flow_ctx.replayed += 1  # passed to the attempt's end (legato_task_replays_total)
        observer = self.flow_ctx.observer
        if observer is not None and hasattr(observer, "task_replayed"):  # traces on
            notify(observer.task_replayed, prev)
        return True, value

    def _remember(self, value: Any, task_run: TaskRun, *, join: bool = True) -> None:
        if type(value) not in PLAIN_TYPES:
            self._track_source(value)
        if self.keyed is not None:
            self.keyed.completed(task_run)
        txns = self.flow_ctx.transactions
        if join and txns and (self.task.on_rollback or self.task.on_commit):
            txns[-1].add(self.task, task_run, value)

    def _track_source(self, value: Any) -> None:
        """Remember that ``value`` came from this call: passed on as it is to a later
        call, it makes a data edge (see engine/dependencies.py)."""
        sources = self.flow_ctx.result_sources
        sources[id(value)] = (value, self.task_run_id)
        if len(sources) > MAX_TRACKED_RESULTS:
            # Forget the oldest: memory stays flat in long runs; a value passed on
            # long after it was made just loses its graph edge, nothing else.
            del sources[next(iter(sources))]

    # -- records --------------------------------------------------------------

    def record(
        self,
        state: StateType,
        *,
        error: ErrorInfo | None = None,
        cached: bool = False,
        has_result: bool = False,
        end: bool = True,
        inputs: dict[str, str] | None = None,
    ) -> TaskRun:
        task = self.task
        ended = utcnow() if end else None
        attempt_log: tuple[AttemptInfo, ...] = ()
        if self.attempt_log is None and end and self.previous is not None and self.attempts > 1:
            self.attempt_log = history_before(self.previous)  # from an earlier execution
        if self.attempt_log is not None:
            if ended is not None and state is not StateType.RUNNING:
                self._log_attempt(state, ended, None, error)
            attempt_log = tuple(self.attempt_log)
        return TaskRun(
            id=self.task_run_id,
            flow_run_id=self.flow_ctx.run.id,
            call_key=self.call_key,
            task_name=task.name,
            name=self.run_name(),
            state=state,
            attempts=self.attempts,
            cached=cached,
            start_time=self.start_time,
            end_time=ended,
            error=error,
            inputs=inputs,
            dependencies=self.dependencies,
            parent_task_run_id=self.parent_task_run_id,
            tags=self.tags,
            cache_key=self.cache_key,
            cache_expires_at=(
                utcnow() + task.cache_expiration
                if self.cache_key and task.cache_expiration is not None
                else None
            ),
            result_serializer=task.result_serializer if has_result else None,
            has_result=has_result,
            attempt_log=attempt_log,
            args_fingerprint=self.fingerprint,
            host=self.remote_host,
        )

    def _log_attempt(
        self,
        state: StateType,
        ended: datetime,
        exc: BaseException | None,
        error: ErrorInfo | None = None,
    ) -> None:
        if self.attempt_log is None:
            self.attempt_log = history_before(self.previous)
        log = self.attempt_log
        if log and log[-1].attempt == self.attempts:
            return  # this attempt is already in the history
        if exc is not None:
            error = ErrorInfo(type(exc).__name__, str(exc))
        log.append(
            AttemptInfo(
                attempt=self.attempts,
                start_time=self.attempt_started or self.start_time,
                end_time=ended,
                state=state.value,
                error=brief(error),
            )
        )

    def note_remote_answer(self, host: str, reference: StoredResult | None) -> None:
        """A remote runner's body answered this attempt: where it ran goes on the record,
        and a large result written to result storage is recorded by its reference
        instead of its bytes."""
        self.remote_host = host
        self.result_reference = reference

    def running_record(self) -> TaskRun:
        return self.record(StateType.RUNNING, end=False)

    def inputs_repr(self) -> dict[str, str]:
        names = self.task.parameter_names
        out = {
            (names[i] if i < len(names) else f"args[{i}]"): short_repr(v)
            for i, v in enumerate(self.args)
        }
        out.update({k: short_repr(v) for k, v in self.kwargs.items()})
        return out

    # -- lifecycle ------------------------------------------------------------

    def begin(self) -> None:
        flow_ctx = self.flow_ctx
        flow_ctx.check_cancelled()
        self.start_time = utcnow()
        with flow_ctx.lock:
            flow_ctx.in_flight[self.call_key] = [time.monotonic(), False, self]
        observer = flow_ctx.observer
        if observer is not None:
            notify(observer.task_started, self.running_record())

    def _leave_flight(self) -> None:
        flow_ctx = self.flow_ctx
        with flow_ctx.lock:
            flow_ctx.in_flight.pop(self.call_key, None)

    def check_cache(self) -> tuple[bool, Any]:
        task = self.task
        policy = task.cache_policy
        if policy is None:
            return False, None
        from legato.errors import LegatoError

        # The policy (and a cache_key_fn) sees this task's context (name, call key, ...).
        task_ctx = self.task_context()
        token = TASK_CONTEXT.set(task_ctx)
        try:
            key = policy.compute_key(
                task_ctx, self.bound_parameters(), self.flow_ctx.run.parameters
            )
        except LegatoError:
            raise
        except Exception as exc:
            raise TaskCallError(
                f"cache_policy {policy!r} of task '{task.name}' raised {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            TASK_CONTEXT.reset(token)
        if key is None:
            return False, None
        self.cache_key = str(key)
        if task.refresh_cache:
            return False, None  # run it and store the new result under the key
        store = self.flow_ctx.store
        hit = store.get_cached_result(self.cache_key, utcnow())
        if hit is None:
            return False, None
        source = store.get_task_run(hit.task_run_id)
        if source is not None and source.rolled_back:
            return False, None  # its effects were compensated: run it again
        value = _results.deserialize(hit.result, f"cached result of task '{task.name}'")
        self._leave_flight()
        record = self.record(StateType.COMPLETED, cached=True, has_result=True)
        self._write(record, hit.result)
        self._remember(value, record)
        self._finished(record, value)
        return True, value

    def _answer_recorded(self, stored: StoredResult) -> Any:
        """Return the result a committed keyed transaction recorded for this call,
        recorded as a cached task run; its commit and rollback hooks ran back then."""
        value = _results.deserialize(
            stored, f"task '{self.task.name}' ({self.call_key}) recorded by a keyed transaction"
        )
        self._leave_flight()
        record = self.record(StateType.COMPLETED, cached=True, has_result=True)
        self._write(record, stored)
        self._remember(value, record, join=False)
        self._finished(record, value)
        return value

    def bound_parameters(self) -> dict[str, Any]:
        names = self.task.parameter_names
        params = {names[i] if i < len(names) else f"args[{i}]": v for i, v in enumerate(self.args)}
        params.update(self.kwargs)
        return params

    def _write(self, record: TaskRun, result: Any = None) -> None:
        flow_ctx = self.flow_ctx
        injector = _faults.ACTIVE
        ordinal = injector.before_record(record, flow_ctx.flow.name) if injector else 0
        try:
            flow_ctx.store.record_task_run(
                record, flow_ctx.owner_token, result=result, logs=flow_ctx.take_logs()
            )
            if injector is not None:
                injector.after_record(record, flow_ctx.flow.name, ordinal)
        except (RunOwnershipLost, StoreUnavailableError) as exc:
            raise self._write_failed(exc)  # noqa: B904 - its cause is set there

    def _write_failed(self, exc: BaseException) -> BaseException:
        """The error a call ends with when its record could not be written."""
        flow_ctx = self.flow_ctx
        if isinstance(exc, RunOwnershipLost):
            # Not an Exception from here on: user code around the call cannot
            # swallow it and carry on writing for a run that is not its own.
            flow_ctx.lost = True
            stopped = RunStopped(flow_ctx.run.id, lost=True)
            stopped.__suppress_context__ = True
            return stopped
        if isinstance(exc, StoreUnavailableError):
            flow_ctx.stopped = True  # nothing can be recorded: no further task may run
            lost = StoreLost(exc)
            lost.__cause__ = exc
            return lost
        return exc

    def _write_soon(self, record: TaskRun, result: StoredResult | None, value: Any) -> Any:
        """Hand the record to the store without waiting for its commit; the returned
        marker tells the thread runner that the future resolves once it is committed."""
        flow_ctx = self.flow_ctx
        pending = CommitPending()

        def committed(exc: BaseException | None) -> None:
            if exc is not None:
                pending.settle(None, self._write_failed(exc))
                return
            try:
                self._remember(value, record)
                self._finished(record, value)
            except BaseException as error:
                pending.settle(None, error)
                return
            pending.settle(value, None)

        flow_ctx.store.record_task_run_soon(
            record,
            flow_ctx.owner_token,
            result=result,
            logs=flow_ctx.take_logs(),
            committed=committed,
        )
        return pending

    def complete(self, value: Any) -> Any:
        if type(value) is State:  # the task returned its own final state
            return self._complete_returned(value)
        task = self.task
        self._leave_flight()
        stored = self.result_reference
        if stored is None and task.persist_result:
            try:
                stored = _results.serialize_fast(value, task.result_serializer)
            except Exception:
                stored = None
            if stored is None:
                # Slow path: encodes again with an error that names the task and type.
                try:
                    stored = _results.serialize(
                        value, task.result_serializer, f"task '{task.name}' ({self.call_key})"
                    )
                except ResultNotSerializableError as exc:
                    self.fail(exc)
                    raise
        record = self.record(
            StateType.COMPLETED,
            has_result=stored is not None,
            inputs=self.inputs_repr() if task.record_inputs else None,
        )
        if (
            self.defer_commit
            and not task.on_completion
            and _faults.ACTIVE is None
            and not self.flow_ctx.transactions
            and self.keyed is None
        ):
            # Nothing needs the commit to have happened on this thread.
            return self._write_soon(record, stored, value)
        self._write(record, stored)
        self._remember(value, record)
        self._finished(record, value)
        return value

    def _complete_returned(self, returned: State) -> Any:
        """End as the state the task returned: completed with its data, or failed or
        cancelled with its message (raised to the caller, without retries)."""
        ending = ending_of(returned, f"task '{self.task.name}' ({self.call_key})")
        if ending.type is StateType.COMPLETED:
            return self.complete(ending.value)
        if ending.type is StateType.CANCELLED:
            error: BaseException = TaskCallError(
                f"task '{self.task.name}' ({self.call_key}) returned a cancelled state"
                + (f": {ending.message}" if ending.message else "")
            )
            self.fail(error, StateType.CANCELLED)
            raise error
        error = ending.error or TaskCallError(ending.message or "returned a failed state")
        self.fail(error)
        raise error

    def _finished(self, record: TaskRun, value: Any) -> None:
        observer = self.flow_ctx.observer
        if observer is not None:
            notify(observer.task_finished, record)
        if self.task.on_completion:
            state = State(StateType.COMPLETED, timestamp=record.end_time, _value=value)
            for hook in self.task.on_completion:
                _run_hook(hook, self.task, record, state, self.flow_ctx)

    def fail(self, exc: BaseException, state: StateType = StateType.FAILED) -> TaskRun:
        self._leave_flight()
        record = self.record(state, error=error_info(exc), inputs=self.inputs_repr())
        self._write(record)
        observer = self.flow_ctx.observer
        if observer is not None:
            notify(observer.task_finished, record)
        if state is StateType.FAILED and self.task.on_failure:
            st = State(StateType.FAILED, message=str(exc), _exception=exc)
            for hook in self.task.on_failure:
                _run_hook(hook, self.task, record, st, self.flow_ctx)
        return record

    def retry_delay(self, exc: BaseException) -> float | None:
        """Seconds to wait before the next attempt, or None when not retrying."""
        task = self.task
        retries_done = self.attempts_this_execution - 1
        if retries_done >= task.retries or not isinstance(exc, Exception):
            return None
        if isinstance(
            exc, (UpstreamTaskFailedError, NonDeterministicFlowError, TaskArgumentNotPicklableError)
        ):
            return None  # trying again cannot help
        if task.retry_on is not None and not isinstance(exc, task.retry_on):
            return None
        if task.retry_condition_fn is not None:
            record = self.record(StateType.FAILED, error=error_info(exc))
            state = State(StateType.FAILED, message=str(exc), _exception=exc)
            try:
                if not task.retry_condition_fn(task, record, state):
                    return None
            except Exception as hook_error:
                # No retry, said out loud: a broken condition must not look like "no".
                self._log_error(
                    "retry_condition_fn of task '%s' raised %s: %s; not retrying",
                    task.name,
                    type(hook_error).__name__,
                    hook_error,
                )
                return None
        delay = task.delay_for_retry(retries_done)
        if task.retry_jitter_factor and delay > 0:
            delay += random.uniform(0, delay * task.retry_jitter_factor)
        # A wait the failure itself asked for (a provider's Retry-After) is a floor.
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, (int, float)) and asked > delay:
            delay = float(asked)
        return delay

    def note_retry(self, exc: BaseException, delay: float) -> None:
        """Record the failed attempt (visible while waiting) and log the retry."""
        flow_ctx = self.flow_ctx
        self._log_attempt(StateType.FAILED, utcnow(), exc)
        record = self.record(StateType.RUNNING, error=error_info(exc), end=False)
        self._write(record)
        from legato.engine.logs import get_run_logger

        token = TASK_CONTEXT.set(self.task_context())
        try:
            get_run_logger().warning(
                "attempt %d of task '%s' failed with %s: %s; retrying in %.3gs",
                self.attempts,
                self.task.name,
                type(exc).__name__,
                exc,
                delay,
            )
        finally:
            TASK_CONTEXT.reset(token)
        flow_ctx.check_cancelled()

    def _log_error(self, message: str, *args: Any) -> None:
        """An error line in the run's logs (and on the console), from this task."""
        from legato.engine.logs import get_run_logger

        token = TASK_CONTEXT.set(self.task_context())
        try:
            get_run_logger().error(message, *args)
        finally:
            TASK_CONTEXT.reset(token)

    def run_name(self) -> str:
        """The task run's name: the call key, or the task's ``task_run_name`` filled in.

        A callable name reads the run's attributes (``prefect.runtime.task_run
        .parameters``, as Prefect's documentation shows), so it is called with this
        call's context set."""
        task = self.task
        if not task.task_run_name:
            return self.call_key
        current = TASK_CONTEXT.get()
        if not callable(task.task_run_name) or (current is not None and current.call is self):
            return task.run_name_for(self)
        token = TASK_CONTEXT.set(self.task_context())
        try:
            return task.run_name_for(self)
        finally:
            TASK_CONTEXT.reset(token)

    def task_context(self) -> TaskRunContext:
        return TaskRunContext(
            flow_ctx=self.flow_ctx,
            task=self.task,
            task_run_id=self.task_run_id,
            call_key=self.call_key,
            attempt=self.attempts,
            tags=self.tags,
            call=self,
        )

    # -- execution ------------------------------------------------------------

    def run(self) -> Any:
        """Execute synchronously (replay, cache, limits, attempts) and return the value."""
        task = self.task
        flow_ctx = self.flow_ctx
        if (
            self.previous is None
            and not self.tags
            and not self.has_futures
            and not self.wait_for
            and self.keyed is None
            and not self.defer_commit
            and task.cache_policy is None
            and task.timeout_seconds is None
            and task.persist_result
            and task.result_serializer == "pickle"
            and not task.task_run_name
            and not task.record_inputs
            and not task.on_running
            and not task.on_completion
            and flow_ctx.observer is None
            and not flow_ctx.transactions
            and not (flow_ctx.lost or flow_ctx.cancel_requested or flow_ctx.stopped)
            and _faults.ACTIVE is None
            and _replay_only.ACTIVE is None
        ):
            return self._run_plain(task, flow_ctx)
        done, value = self._prepare()
        if done:
            return value
        names = limits_among(self.flow_ctx.store, self.tags) if self.tags else None
        if not names:
            return self._attempts()
        return run_holding(self, names)

    def _run_plain(self, task: Task[Any, Any], flow_ctx: FlowRunContext) -> Any:
        """`run` for the plain call (see the test in `run`): the same steps as
        `_prepare`, `_attempts` and `complete`, minus the branches such a call cannot
        take. Anything unusual on the way (a failed attempt, a returned `State`, a
        remote runner's answer, a result pickle cannot encode) goes back to the
        general path."""
        call_key = self.call_key
        self.start_time = utcnow()
        with flow_ctx.lock:
            flow_ctx.in_flight[call_key] = [time.monotonic(), False, self]
        self.attempts += 1
        self.attempts_this_execution += 1
        token = TASK_CONTEXT.set(
            TaskRunContext(
                flow_ctx=flow_ctx,
                task=task,
                task_run_id=self.task_run_id,
                call_key=call_key,
                attempt=self.attempts,
                tags=self.tags,
                call=self,
            )
        )
        try:
            value = task.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            TASK_CONTEXT.reset(token)
            delay = self._retry_or_end(exc)
            if delay is None:
                raise
            if delay > 0:
                _clock.sleep(delay)
            self._check_cancelled_before_retry()
            return self._attempts()  # the next attempts, as usual
        TASK_CONTEXT.reset(token)
        if type(value) is State or self.remote_host is not None:
            # A returned state, or a remote runner's answer (its host and maybe a
            # result kept by reference go on the record): the general path.
            return self.complete(value)
        try:
            stored = StoredResult("pickle", _pickle_dumps(value, _PICKLE_PROTOCOL))
        except Exception:
            return self.complete(value)  # names the task and type in its error
        with flow_ctx.lock:
            flow_ctx.in_flight.pop(call_key, None)
        try:
            # The record `complete` would build, written without building it
            # (fields in TaskCompletion's order, positional: it is the hot path).
            flow_ctx.store.record_task_completion(
                TaskCompletion(
                    self.task_run_id,
                    flow_ctx.run.id,
                    call_key,
                    task.name,
                    self.attempts,
                    self.start_time,
                    utcnow(),
                    self.dependencies,
                    self.parent_task_run_id,
                    self.tags,
                    self.fingerprint,
                ),
                flow_ctx.owner_token,
                result=stored,
                logs=flow_ctx.take_logs(),
            )
        except (RunOwnershipLost, StoreUnavailableError) as exc:
            raise self._write_failed(exc)  # noqa: B904 - its cause is set there
        if type(value) not in PLAIN_TYPES:
            self._track_source(value)  # no keyed transaction or hooks here
        return value

    def _attempts(self) -> Any:
        fn = self.task.fn
        if _faults.ACTIVE is not None:  # fault injection (legato.testing.fail_task)
            fn = _faults.ACTIVE.task_fn(fn, self.call_key, self.flow_ctx.flow.name)
        timeout = self.task.timeout_seconds
        while True:
            token = self._next_attempt()
            try:
                if timeout is None:
                    value = fn(*self.args, **self.kwargs)
                else:
                    value = run_with_timeout(fn, self.args, self.kwargs, timeout, self.task.name)
            except BaseException as exc:
                TASK_CONTEXT.reset(token)
                delay = self._retry_or_end(exc)
                if delay is None:
                    raise
                if delay > 0:
                    _clock.sleep(delay)
                self._check_cancelled_before_retry()
                continue
            TASK_CONTEXT.reset(token)
            return self.complete(value)

    async def run_async(self) -> Any:
        """Execute an ``async def`` task on the running event loop."""
        from legato.engine import branches

        branches.install()  # a loop of its own (a submitted async task) needs branches too
        done, value = self._prepare()
        if done:
            return value
        names = limits_among(self.flow_ctx.store, self.tags) if self.tags else None
        if not names:
            return await self._attempts_async()
        return await run_holding_async(self, names)

    async def _attempts_async(self) -> Any:
        fn = self.task.fn
        if _faults.ACTIVE is not None:  # fault injection (legato.testing.fail_task)
            fn = _faults.ACTIVE.task_fn(fn, self.call_key, self.flow_ctx.flow.name)
        timeout = self.task.timeout_seconds
        while True:
            token = self._next_attempt()
            try:
                value = await run_async_with_timeout(
                    fn(*self.args, **self.kwargs), timeout, self.task.name
                )
            except BaseException as exc:
                TASK_CONTEXT.reset(token)
                delay = self._retry_or_end(exc)
                if delay is None:
                    raise
                if delay > 0:
                    await _clock.sleep_async(delay)
                self._check_cancelled_before_retry()
                continue
            TASK_CONTEXT.reset(token)
            return self.complete(value)

    def _prepare(self) -> tuple[bool, Any]:
        """Replay, start, inputs, cache: (True, value) when no attempt is needed."""
        done, value = self.replayed()
        if done:
            return True, value
        self.begin()
        try:
            self._resolve_inputs()
            if self.keyed is not None and self.keyed.recorded is not None:
                return True, self._answer_recorded(self.keyed.recorded)
            return self.check_cache()
        except BaseException as exc:
            self._end_with(exc)
            raise

    def _next_attempt(self) -> Token[TaskRunContext | None]:
        self.attempts += 1
        self.attempts_this_execution += 1
        if self.attempt_log is not None:  # a retry: its own start, for the timeline
            self.attempt_started = utcnow()
        token = TASK_CONTEXT.set(self.task_context())
        if self.task.on_running:  # each attempt starts running, as in Prefect
            state = State(StateType.RUNNING, run_id=self.task_run_id)
            for hook in self.task.on_running:
                _run_hook(hook, self.task, self.running_record(), state, self.flow_ctx)
        return token

    def _retry_or_end(self, exc: BaseException) -> float | None:
        """Seconds before the next attempt; None (with the failure recorded) when the
        call fails for good."""
        delay = self.retry_delay(exc)
        if delay is None:
            self._end_with(exc)
            return None
        try:
            self.note_retry(exc, delay)
        except BaseException as stop:  # cancelled (or the run lost) before the retry
            self._end_with(stop)
            raise
        return delay

    def _check_cancelled_before_retry(self) -> None:
        """A cancel request that came during the retry wait ends the call here."""
        try:
            self.flow_ctx.check_cancelled()
        except BaseException as stop:
            self._end_with(stop)
            raise

    def _end_with(self, exc: BaseException) -> None:
        if isinstance(exc, RunStopped | RunOwnershipLost | StoreLost | StoreUnavailableError):
            return  # nothing to record, or no way to record it
        if isinstance(exc, CancelledRun):
            self.fail(exc, StateType.CANCELLED)
        elif isinstance(exc, Exception):
            self.fail(exc)
        else:
            self.fail(exc, StateType.CRASHED)


def _run_hook(hook: Callable[..., Any], task: Any, record: TaskRun, state: State, ctx: Any) -> None:
    try:
        hook(task, record, state)
    except Exception as exc:
        from legato.engine.logs import get_run_logger

        get_run_logger().error(
            "hook %s of task '%s' raised %s: %s",
            getattr(hook, "__name__", hook),
            task.name,
            type(exc).__name__,
            exc,
        )
