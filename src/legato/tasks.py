"""The ``@task`` decorator and the `Task` object.

Options follow Prefect 3's names so that everyday Prefect code ports by
changing its imports.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import inspect
import json
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from types import MethodType
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload

from legato._hooks import HookList
from legato._methods import binding_target, unwrap_method
from legato.engine.context import FLOW_CONTEXT
from legato.engine.results import check_serializer
from legato.engine.task_engine import TaskCall
from legato.errors import ConfigurationError
from legato.futures import LegatoFuture, LegatoFutureList, unmapped
from legato.settings import env_flag
from legato.task_runners.threads import ThreadPoolTaskRunner

if TYPE_CHECKING:
    from legato.cache_policies import CachePolicy
    from legato.engine.context import RunContext
    from legato.states import State

P = ParamSpec("P")
R = TypeVar("R")

RetryDelay = float | int | Sequence[float] | Callable[[int], Sequence[float]] | None
Hook = Callable[..., Any]
_UNSET: Any = object()  # an optional keyword that was not given


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """``retry_delay_seconds=exponential_backoff(10)`` waits 10, 20, 40… seconds."""
    if backoff_factor < 0:
        raise ConfigurationError("exponential_backoff(backoff_factor) needs a factor >= 0")

    def retry_backoff(retries: int) -> list[float]:
        return [backoff_factor * 2**r for r in range(retries)]

    return retry_backoff


def task_input_hash(context: RunContext, arguments: dict[str, Any]) -> str | None:
    """A cache key from the task's identity and its inputs (None if they cannot be hashed).

    Use as ``@task(cache_key_fn=task_input_hash)``: a later call with equal
    inputs returns the stored result without running.
    """
    task_key = context.task_name or ""
    from legato.engine.context import TASK_CONTEXT

    task_ctx = TASK_CONTEXT.get()
    if task_ctx is not None and task_ctx.call_key == context.call_key:
        # Two tasks that share a name but not their code must not share entries.
        fn = task_ctx.task.fn
        task_key += f"\0{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}"
        # Editing the task's code starts a fresh cache, as in Prefect.
        task_key += f"\0{task_ctx.task.code_hash}"
    try:
        payload = json.dumps(arguments, sort_keys=True, default=_reject).encode()
    except (TypeError, ValueError):
        try:
            payload = pickle.dumps(arguments, protocol=4)
        except Exception:
            return None
    return hashlib.sha256(task_key.encode() + b"\0" + payload).hexdigest()


def _reject(value: Any) -> Any:
    raise TypeError(type(value).__name__)


class Task(Generic[P, R]):
    """A function whose calls inside a flow run are recorded, retried and replayed."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        retries: int = 0,
        retry_delay_seconds: RetryDelay = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: Callable[..., bool] | None = None,
        retry_on: type[BaseException]
        | tuple[type[BaseException], ...]
        | list[type[BaseException]]
        | None = None,
        timeout_seconds: float | None = None,
        cache_key_fn: Callable[[RunContext, dict[str, Any]], str | None] | None = None,
        cache_expiration: timedelta | float | None = None,
        cache_policy: CachePolicy | None = None,
        refresh_cache: bool = False,
        persist_result: bool | None = None,
        result_serializer: str = "pickle",
        log_prints: bool | None = None,
        record_inputs: bool | None = None,
        task_run_name: str | Callable[[], str] | None = None,
        on_completion: Sequence[Hook] | None = None,
        on_failure: Sequence[Hook] | None = None,
        on_rollback: Sequence[Hook] | None = None,
        on_commit: Sequence[Hook] | None = None,
        on_running: Sequence[Hook] | None = None,
        call_key: str | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> None:
        # `@task` over `@classmethod`/`@staticmethod`: bound as that kind (see __get__).
        fn, self._method_kind = unwrap_method(fn)
        if not callable(fn):
            raise ConfigurationError(f"@task needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "task"))
        self.description = description or inspect.getdoc(fn)
        self.tags: tuple[str, ...] = tuple(tags or ())
        self.version = version
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ConfigurationError(
                f"task '{self.name}': retries must be a whole number >= 0, got {retries!r}"
            )
        self.retries = retries
        self.retry_delay_seconds = _check_delay(self.name, retry_delay_seconds)
        if retry_jitter_factor is not None and retry_jitter_factor < 0:
            raise ConfigurationError(f"task '{self.name}': retry_jitter_factor must be >= 0")
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        if isinstance(retry_on, (list, set, frozenset)):
            retry_on = tuple(retry_on)
        elif retry_on is not None and not isinstance(retry_on, tuple):
            retry_on = (retry_on,)
        if retry_on is not None and not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
        ):
            raise ConfigurationError(
                f"task '{self.name}': retry_on must be exception types, got {retry_on!r}"
            )
        self.retry_on: tuple[type[BaseException], ...] | None = retry_on
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ConfigurationError(
                f"task '{self.name}': timeout_seconds must be > 0, got {timeout_seconds!r}"
            )
        self.timeout_seconds = timeout_seconds
        self.cache_key_fn = cache_key_fn
        self.cache_policy = _cache_policy_of(self.name, cache_policy, cache_key_fn, persist_result)
        self.refresh_cache = bool(refresh_cache)
        self.cache_expiration = cache_expiration_of(cache_expiration)
        # Results are stored unless persist_result=False; saying persist_result=True
        # also turns on the DEFAULT cache policy when no other is given, as in Prefect.
        self.persist_result: bool = persist_result is not False
        self.result_serializer = check_serializer(result_serializer)
        self.log_prints = log_prints
        # Inputs are always kept for a failed task run; for every task run only
        # when asked (a short repr of each argument costs a few µs per call).
        self.record_inputs: bool = (
            record_inputs if record_inputs is not None else env_flag("LEGATO_RECORD_INPUTS")
        )
        self.task_run_name = task_run_name
        # Lists that are also decorators: `@my_task.on_failure` registers a hook.
        self.on_completion = HookList(on_completion or ())
        self.on_failure = HookList(on_failure or ())
        self.on_rollback = HookList(on_rollback or ())
        self.on_commit = HookList(on_commit or ())
        self.on_running = HookList(on_running or ())
        self.call_key = call_key
        # What one call needs of a cluster's workers (Dask resources, Ray options).
        self.resources: dict[str, float] = _resources_of(self.name, resources)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.parameter_names = tuple(inspect.signature(fn).parameters)
        # `wait_for=` is ours unless the function has a parameter of that name.
        self._takes_wait_for = "wait_for" not in self.parameter_names
        # Likewise `return_state=`.
        self._takes_return_state = "return_state" not in self.parameter_names
        if log_prints:
            from legato.engine.logs import install_print_capture

            install_print_capture()
        self._options = {
            "name": name,
            "description": description,
            "tags": tags,
            "version": version,
            "retries": retries,
            "retry_delay_seconds": retry_delay_seconds,
            "retry_jitter_factor": retry_jitter_factor,
            "retry_condition_fn": retry_condition_fn,
            "retry_on": retry_on,
            "timeout_seconds": timeout_seconds,
            "cache_key_fn": cache_key_fn,
            "cache_expiration": cache_expiration,
            "cache_policy": cache_policy,
            "refresh_cache": refresh_cache,
            "persist_result": persist_result,
            "result_serializer": result_serializer,
            "log_prints": log_prints,
            "record_inputs": record_inputs,
            "task_run_name": task_run_name,
            "on_completion": on_completion,
            "on_failure": on_failure,
            "on_rollback": on_rollback,
            "on_commit": on_commit,
            "on_running": on_running,
            "call_key": call_key,
            "resources": resources,
        }
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn
        # So `typing.get_type_hints(task)` reads the function's hints: libraries that
        # build a schema from a callable (a pydantic-ai tool) accept a task as is.
        self.__annotations__ = getattr(fn, "__annotations__", {})

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        """``obj.method``: this task bound to ``obj`` (or its class), as a function
        would be; the bound copy shares every option with this task."""
        target = binding_target(self._method_kind, instance, owner)
        if target is None:
            return self
        bound = copy.copy(self)
        bound.fn = MethodType(self.fn, target)
        bound.parameter_names = self.parameter_names[1:]
        return bound

    @property
    def code_hash(self) -> str:
        """A hash of the function's source (of its code object when there is no source)."""
        cached = self.__dict__.get("_code_hash")
        if cached is None:
            try:
                text = inspect.getsource(self.fn).encode()
            except (OSError, TypeError):
                import marshal

                code = getattr(self.fn, "__code__", None)
                text = marshal.dumps(code) if code is not None else repr(self.fn).encode()
            cached = hashlib.sha256(text).hexdigest()[:16]
            self.__dict__["_code_hash"] = cached
        return str(cached)

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise ConfigurationError(
                f"unknown task option(s) {', '.join(sorted(unknown))}; "
                f"valid options: {', '.join(sorted(self._options))}"
            )
        # Hooks registered since (by the decorator forms) carry over to the copy.
        hooks = {
            "on_completion": self.on_completion,
            "on_failure": self.on_failure,
            "on_rollback": self.on_rollback,
            "on_commit": self.on_commit,
            "on_running": self.on_running,
        }
        merged = {**self._options, **hooks, **options}
        # A newly given cache_policy replaces an inherited cache_key_fn, and vice versa.
        if "cache_policy" in options and "cache_key_fn" not in options:
            merged["cache_key_fn"] = None
        elif "cache_key_fn" in options and "cache_policy" not in options:
            merged["cache_policy"] = None
        return Task(self.fn, **merged)

    # -- retry delays ------------------------------------------------------------

    def delay_for_retry(self, retries_done: int) -> float:
        delay = self.retry_delay_seconds
        if delay is None:
            return 0.0
        if callable(delay):
            delay = list(delay(self.retries))
        if isinstance(delay, (int, float)):
            return float(delay)
        seq = list(delay)
        if not seq:
            return 0.0
        return float(seq[min(retries_done, len(seq) - 1)])

    def run_name_for(self, call: TaskCall) -> str:
        template = self.task_run_name
        if callable(template):
            return str(template())
        if template is None:
            return call.call_key
        try:
            return template.format(**call.bound_parameters())
        except (KeyError, IndexError, ValueError):
            return template

    # -- calling -----------------------------------------------------------------

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        flow_ctx = FLOW_CONTEXT.get()
        return_state = (
            bool(kwargs.pop("return_state", False))
            if kwargs and self._takes_return_state
            else False
        )
        if flow_ctx is None:
            # Outside a flow: a tracked task run in an implicit flow run of its own.
            from legato.engine.standalone import call_standalone

            wait_for = kwargs.pop("wait_for", None) if kwargs and self._takes_wait_for else None
            return call_standalone(self, args, kwargs, wait_for, return_state)  # type: ignore[arg-type]
        wait_for = kwargs.pop("wait_for", None) if kwargs and self._takes_wait_for else None
        call = TaskCall(self, flow_ctx, args, kwargs, wait_for)  # type: ignore[arg-type]
        if self.is_async:
            runner = (
                _async_state_of(call.task_run_id, call.run_async)
                if return_state
                else call.run_async()
            )
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(runner)
            return runner  # type: ignore[return-value]
        if asyncio._get_running_loop() is not None:
            # A sync task called from async code: run it off the event loop, so
            # the flow's timeout still fires while it blocks.
            if return_state:
                return _state_of(call, lambda: run_off_loop(call))  # type: ignore[return-value]
            return run_off_loop(call)
        if return_state:
            return _state_of(call, call.run)  # type: ignore[return-value]
        return call.run()

    @overload
    def submit(
        self,
        *args: Any,
        return_state: Literal[False] = False,
        wait_for: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> LegatoFuture[R]: ...

    @overload
    def submit(
        self,
        *args: Any,
        return_state: Literal[True],
        wait_for: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> State: ...

    def submit(
        self,
        *args: Any,
        return_state: Any = _UNSET,
        wait_for: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> LegatoFuture[R] | State:
        """Run the task on the flow's task runner; returns a future at once.

        With ``return_state=True``, wait for the task run and return its final
        `State` instead (a failure does not raise).
        """
        flow_ctx = FLOW_CONTEXT.get()
        if flow_ctx is None:
            from legato.engine.standalone import submit_standalone

            return submit_standalone(self, "submit", args, kwargs, wait_for, return_state)
        want_state = self._own_return_state(return_state, kwargs)
        call = TaskCall(self, flow_ctx, args, kwargs, wait_for)
        future = _submit_call(call, flow_ctx)
        return future.wait_state() if want_state else future

    def _own_return_state(self, return_state: Any, kwargs: dict[str, Any]) -> bool:
        """Whether ``return_state`` asks for states; passed on to the function instead
        when it has a parameter of that name."""
        if return_state is _UNSET:
            return False
        if not self._takes_return_state:
            kwargs["return_state"] = return_state
            return False
        return bool(return_state)

    @overload
    def map(
        self,
        *args: Any,
        return_state: Literal[False] = False,
        wait_for: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> LegatoFutureList[R]: ...

    @overload
    def map(
        self,
        *args: Any,
        return_state: Literal[True],
        wait_for: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[State]: ...

    def map(
        self,
        *args: Any,
        return_state: Any = _UNSET,
        wait_for: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> LegatoFutureList[R] | list[State]:
        """Submit one call per element of the iterable arguments, in input order.

        Lists, tuples, sets, generators and lists of futures are mapped over; wrap
        an argument in ``unmapped(...)`` to pass it whole to every call. Strings,
        bytes and mappings are passed whole. With ``return_state=True``, wait for
        all of them and return their final states, in input order.
        """
        flow_ctx = FLOW_CONTEXT.get()
        if flow_ctx is None:
            from legato.engine.standalone import submit_standalone

            return submit_standalone(self, "map", args, kwargs, wait_for, return_state)
        want_state = self._own_return_state(return_state, kwargs)
        mapped: dict[int | str, list[Any]] = {}
        static: dict[int | str, Any] = {}
        pairs: list[tuple[int | str, Any]] = [*enumerate(args), *kwargs.items()]
        for key, value in pairs:
            if isinstance(value, unmapped):
                static[key] = value.value
            elif _is_mappable(value):
                mapped[key] = list(value)
            else:
                static[key] = value
        if not mapped:
            raise ConfigurationError(
                f"task '{self.name}'.map() needs at least one iterable argument to map over"
            )
        lengths = {k: len(v) for k, v in mapped.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise ConfigurationError(
                f"task '{self.name}'.map() got iterables of different lengths ({shown}); "
                f"make them equal or wrap constant ones in unmapped()"
            )
        count = next(iter(lengths.values()))
        n_positional = len(args)
        futures: LegatoFutureList[R] = LegatoFutureList()
        for i in range(count):
            call_args = tuple(
                mapped[j][i] if j in mapped else static[j] for j in range(n_positional)
            )
            call_kwargs = {k: (mapped[k][i] if k in mapped else static[k]) for k in kwargs}
            call = TaskCall(self, flow_ctx, call_args, call_kwargs, wait_for)
            futures.append(_submit_call(call, flow_ctx))
        if want_state:
            return [future.wait_state() for future in futures]
        return futures


# Raised by a task call but not a failure of the task run: `return_state=True` lets
# these through, as it does cancellation, pause and the other engine signals.
_ENGINE_ERRORS: tuple[type[BaseException], ...] = ()


def _engine_errors() -> tuple[type[BaseException], ...]:
    global _ENGINE_ERRORS
    if not _ENGINE_ERRORS:
        from legato.errors import FlowTimeoutError, NonDeterministicFlowError, StoreError

        _ENGINE_ERRORS = (FlowTimeoutError, NonDeterministicFlowError, StoreError)
    return _ENGINE_ERRORS


def _failed_state(run_id: str | None, exc: Exception) -> State:
    from legato.states import State, StateType

    return State(StateType.FAILED, message=str(exc), run_id=run_id, _exception=exc)


def _state_of(call: TaskCall | None, run: Callable[[], Any]) -> State:
    """Run a task call and return its final state: what ``return_state=True`` gives."""
    from legato.states import State, StateType

    run_id = call.task_run_id if call is not None else None
    try:
        value = run()
    except _engine_errors():
        raise
    except Exception as exc:
        return _failed_state(run_id, exc)
    return State(StateType.COMPLETED, run_id=run_id, _value=value)


async def _async_state_of(run_id: str | None, run: Callable[[], Any]) -> State:
    from legato.states import State, StateType

    try:
        value = await run()
    except _engine_errors():
        raise
    except Exception as exc:
        return _failed_state(run_id, exc)
    return State(StateType.COMPLETED, run_id=run_id, _value=value)


def _is_mappable(value: Any) -> bool:
    if isinstance(value, (str, bytes, bytearray, Mapping)):
        return False
    return isinstance(value, Iterable)


def _submit_call(call: TaskCall, flow_ctx: Any) -> LegatoFuture[Any]:
    from legato.states import State, StateType

    done, value = call.replayed()
    if done:
        return LegatoFuture(
            call.task_run_id,
            call.call_key,
            call.task.name,
            state=State(StateType.COMPLETED, run_id=call.task_run_id, _value=value),
        )
    if call.task.is_async:

        def work() -> Any:
            import asyncio

            return asyncio.run(call.run_async())
    else:
        work = call.run
    runner = flow_ctx.runner
    if runner is None:
        runner = flow_ctx.runner = flow_ctx.flow.task_runner.duplicate()
    if runner.runs_bodies_remotely:
        inner = runner.submit_call(call, work)
    else:
        # On the thread runner a sync call's future resolves once its record is
        # committed, without its thread waiting for the commit.
        call.defer_commit = not call.task.is_async and isinstance(runner, ThreadPoolTaskRunner)
        inner = runner.submit(work)
    future: LegatoFuture[Any] = LegatoFuture(call.task_run_id, call.call_key, call.task.name, inner)
    flow_ctx.outstanding.append(future)
    return future


def run_off_loop(call: TaskCall) -> Any:
    """Run a sync task call on a thread of its own and wait for it, at most until the
    flow's timeout (then the call is abandoned, as a timed-out sync flow body is)."""
    import contextvars
    import threading
    import time

    from legato.errors import FlowTimeoutError
    from legato.task_runners import TaskHandle

    handle = TaskHandle()
    context = contextvars.copy_context()

    def work() -> None:
        try:
            value = context.run(call.run)
        except BaseException as exc:
            handle._finish(None, exc)
        else:
            handle._finish(value, None)

    thread = threading.Thread(target=work, name=f"legato-{call.call_key}", daemon=True)
    thread.start()
    flow_ctx = call.flow_ctx
    deadline = flow_ctx.deadline
    if not handle.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
        flow_ctx.stopped = True  # the abandoned call stops at its next task boundary
        flow = flow_ctx.flow
        raise FlowTimeoutError(flow.name, flow.timeout_seconds or 0.0)
    return handle.result()


def _check_delay(name: str, delay: RetryDelay) -> RetryDelay:
    if delay is None or callable(delay):
        return delay
    if isinstance(delay, bool):
        raise ConfigurationError(f"task '{name}': retry_delay_seconds cannot be a bool")
    if isinstance(delay, (int, float)):
        if delay < 0:
            raise ConfigurationError(f"task '{name}': retry_delay_seconds must be >= 0")
        return delay
    seq = list(delay)
    if not all(isinstance(d, (int, float)) and d >= 0 for d in seq):
        raise ConfigurationError(
            f"task '{name}': retry_delay_seconds must be a number, a list of numbers "
            f">= 0, or a callable; got {delay!r}"
        )
    return seq


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(__fn: None = None, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Decorate a function as a task: ``@task`` or ``@task(retries=3, ...)``."""
    if __fn is not None:
        return Task(__fn, **options)

    def decorator(fn: Callable[P, R]) -> Task[P, R]:
        return Task(fn, **options)

    return decorator


def _resources_of(name: str, resources: Mapping[str, float] | None) -> dict[str, float]:
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise ConfigurationError(
            f"task '{name}': resources must be a mapping such as {{'GPU': 1}}, "
            f"got {type(resources).__name__}"
        )
    checked: dict[str, float] = {}
    for key, amount in resources.items():
        if (
            not isinstance(key, str)
            or isinstance(amount, bool)
            or not isinstance(amount, (int, float))
            or amount <= 0
        ):
            raise ConfigurationError(
                f"task '{name}': resources[{key!r}] = {amount!r}: each resource needs a name "
                f"and a positive amount, such as {{'GPU': 1}}"
            )
        checked[key] = float(amount)
    return checked


def _cache_policy_of(
    name: str,
    cache_policy: CachePolicy | None,
    cache_key_fn: Callable[[RunContext, dict[str, Any]], str | None] | None,
    persist_result: bool | None,
) -> CachePolicy | None:
    """The policy a task's calls use for their cache key; None when they never cache."""
    from legato.cache_policies import DEFAULT, NO_CACHE, CachePolicy

    if cache_policy is not None and cache_key_fn is not None:
        raise ConfigurationError(
            f"task '{name}' got both cache_policy and cache_key_fn; pass one of them "
            f"(CachePolicy.from_cache_key_fn(fn) turns a key function into a policy)"
        )
    if cache_policy is not None and not isinstance(cache_policy, CachePolicy):
        raise ConfigurationError(
            f"task '{name}': cache_policy must be a CachePolicy such as INPUTS or DEFAULT "
            f"from legato.cache_policies, not {type(cache_policy).__name__}"
        )
    if cache_key_fn is not None:
        cache_policy = CachePolicy.from_cache_key_fn(cache_key_fn)
    elif cache_policy is None and persist_result is True:
        cache_policy = DEFAULT
    if cache_policy is NO_CACHE:
        return None
    if cache_policy is not None and persist_result is False:
        raise ConfigurationError(
            f"task '{name}': caching needs stored results; drop persist_result=False "
            f"or the cache policy ({'cache_key_fn' if cache_key_fn else 'cache_policy'})"
        )
    return cache_policy


def cache_expiration_of(value: Any) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    raise ConfigurationError(
        f"cache_expiration must be a timedelta or a number of seconds, not {type(value).__name__}"
    )
