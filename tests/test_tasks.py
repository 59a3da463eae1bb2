"""Tasks: retries and their delays, timeouts, caching, hooks, results, names, options."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import cloudpickle
import pytest

from _waiting import wait_until
from legato import (
    State,
    StateType,
    TaskTimeoutError,
    exponential_backoff,
    flow,
    get_run_context,
    task,
    task_input_hash,
)
from legato.errors import ConfigurationError, ResultNotSerializableError, TaskCallError
from legato.records import FlowRun, TaskRun, utcnow
from legato.store.base import Store


def only_run(store: Store) -> FlowRun:
    runs = store.list_flow_runs(limit=10)
    assert len(runs) == 1, runs
    return runs[0]


def task_runs(store: Store, run: FlowRun | None = None) -> list[TaskRun]:
    return store.list_task_runs((run or only_run(store)).id)


def flaky_fn(failures: int, exc: type[Exception] = ConnectionError) -> Callable[[], str]:
    """A function that raises ``exc`` its first ``failures`` calls, then returns "ok"."""
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise exc(f"failure {calls['n']}")
        return "ok"

    flaky.calls = calls  # type: ignore[attr-defined]
    return flaky


def run_task_in_flow(t: Any, *args: Any) -> Any:
    @flow
    def wrapper() -> Any:
        return t(*args)

    return wrapper()


# --- retries and delays ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_delay_seconds", "retries", "expected_wait"),
    [
        pytest.param(0.1, 2, 0.2, id="number"),
        pytest.param([0.05, 0.15], 2, 0.2, id="list"),
        pytest.param([0.1], 3, 0.3, id="short-list-repeats-last"),
        pytest.param(lambda n: [0.05 * (i + 1) for i in range(n)], 2, 0.15, id="callable"),
        pytest.param(exponential_backoff(0.05), 3, 0.05 + 0.1 + 0.2, id="exponential_backoff"),
    ],
)
def test_retry_delays_are_waited_and_attempts_recorded(
    default_store: Store, retry_delay_seconds: Any, retries: int, expected_wait: float
) -> None:
    fn = flaky_fn(failures=retries)
    flaky = task(name="flaky", retries=retries, retry_delay_seconds=retry_delay_seconds)(fn)
    started = time.monotonic()
    assert run_task_in_flow(flaky) == "ok"
    elapsed = time.monotonic() - started
    assert elapsed >= expected_wait * 0.95
    assert elapsed < expected_wait + 2.0
    assert fn.calls["n"] == retries + 1  # type: ignore[attr-defined]
    (tr,) = task_runs(default_store)
    assert tr.state is StateType.COMPLETED
    assert tr.attempts == retries + 1
    assert tr.error is None  # the error of a failed attempt does not stick to a success
    # Each failed attempt logged a warning naming the task and the error.
    messages = [r.message for r in default_store.read_logs(tr.flow_run_id)]
    retry_lines = [m for m in messages if "retrying in" in m]
    assert len(retry_lines) == retries
    assert "task 'flaky'" in retry_lines[0] and "ConnectionError" in retry_lines[0]


def test_exponential_backoff_values() -> None:
    assert exponential_backoff(2)(4) == [2, 4, 8, 16]
    assert exponential_backoff(0)(2) == [0, 0]
    with pytest.raises(ConfigurationError, match="factor"):
        exponential_backoff(-1)


def test_retries_exhausted_fail_with_the_last_error(default_store: Store) -> None:
    fn = flaky_fn(failures=10)
    flaky = task(name="flaky", retries=2)(fn)
    with pytest.raises(ConnectionError, match="failure 3"):
        run_task_in_flow(flaky)
    (tr,) = task_runs(default_store)
    assert tr.state is StateType.FAILED
    assert tr.attempts == 3
    assert tr.error is not None and tr.error.type == "ConnectionError"
    assert only_run(default_store).state is StateType.FAILED


def test_retry_jitter_adds_up_to_the_factor(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import legato.engine.task_engine as task_engine

    bounds: list[tuple[float, float]] = []

    def max_jitter(a: float, b: float) -> float:
        bounds.append((a, b))
        return b  # always the largest jitter allowed

    monkeypatch.setattr(task_engine.random, "uniform", max_jitter)
    fn = flaky_fn(failures=2)
    flaky = task(retries=2, retry_delay_seconds=0.1, retry_jitter_factor=0.5)(fn)
    started = time.monotonic()
    assert run_task_in_flow(flaky) == "ok"
    elapsed = time.monotonic() - started
    assert bounds == [(0, pytest.approx(0.05)), (0, pytest.approx(0.05))]
    assert elapsed >= 2 * 0.15 * 0.95  # delay + jitter, twice


def test_retry_jitter_is_random_within_bounds(default_store: Store) -> None:
    from legato.engine.task_engine import TaskCall

    t = task(retries=50, retry_delay_seconds=1.0, retry_jitter_factor=0.5)(lambda: None)

    @flow
    def probe() -> list[float]:
        from legato.engine.context import FLOW_CONTEXT

        call = TaskCall(t, FLOW_CONTEXT.get(), (), {}, None)  # type: ignore[arg-type]
        delays = []
        for i in range(1, 40):
            call.attempts_this_execution = i
            delay = call.retry_delay(ConnectionError("x"))
            assert delay is not None
            delays.append(delay)
        return delays

    delays = probe()
    assert all(1.0 <= d <= 1.5 for d in delays)
    assert len(set(delays)) > 1  # jitter actually varies


def test_retry_on_retries_listed_types_only(default_store: Store) -> None:
    listed = flaky_fn(failures=1, exc=ConnectionError)
    other = flaky_fn(failures=1, exc=ValueError)
    retried = task(name="retried", retries=3, retry_on=(ConnectionError, TimeoutError))(listed)
    not_retried = task(name="not_retried", retries=3, retry_on=ConnectionError)(other)

    @flow
    def both() -> str:
        first = retried()
        try:
            not_retried()
        except ValueError as exc:
            return f"{first}/{exc}"
        return "no error?"

    assert both() == "ok/failure 1"
    assert listed.calls["n"] == 2  # type: ignore[attr-defined]
    assert other.calls["n"] == 1  # type: ignore[attr-defined]
    by_name = {t.task_name: t for t in task_runs(default_store)}
    assert by_name["retried"].attempts == 2 and by_name["retried"].state is StateType.COMPLETED
    assert by_name["not_retried"].attempts == 1
    assert by_name["not_retried"].state is StateType.FAILED


def test_retry_on_accepts_a_list() -> None:
    fn = flaky_fn(failures=1, exc=KeyError)
    t = task(retries=1, retry_on=[ValueError, KeyError])(fn)
    assert t.retry_on == (ValueError, KeyError)
    assert run_task_in_flow(t) == "ok"


def test_retry_on_subclasses_are_retried() -> None:
    fn = flaky_fn(failures=1, exc=ConnectionRefusedError)
    t = task(retries=1, retry_on=OSError)(fn)
    assert run_task_in_flow(t) == "ok"


def test_retry_condition_fn_decides_with_task_run_and_state(default_store: Store) -> None:
    seen: list[tuple[str, str, StateType, str]] = []

    def only_transient(t: Any, task_run: TaskRun, state: State) -> bool:
        exc = state.result(raise_on_failure=False)
        seen.append((t.name, task_run.call_key, state.type, type(exc).__name__))
        return "transient" in str(exc)

    calls = {"n": 0}

    @task(retries=5, retry_condition_fn=only_transient)
    def picky() -> None:
        calls["n"] += 1
        if calls["n"] < 3:
            raise RuntimeError("transient glitch")
        raise RuntimeError("permanent: bad data")

    with pytest.raises(RuntimeError, match="permanent"):
        run_task_in_flow(picky)
    assert calls["n"] == 3
    assert seen == [("picky", "picky[0]", StateType.FAILED, "RuntimeError")] * 3
    (tr,) = task_runs(default_store)
    assert tr.attempts == 3 and tr.state is StateType.FAILED


def test_retry_condition_fn_that_raises_means_no_retry() -> None:
    def broken(*_: Any) -> bool:
        raise KeyError("oops")

    fn = flaky_fn(failures=1)
    t = task(retries=3, retry_condition_fn=broken)(fn)
    with pytest.raises(ConnectionError):
        run_task_in_flow(t)
    assert fn.calls["n"] == 1  # type: ignore[attr-defined]


def test_async_task_retries_with_delay(default_store: Store) -> None:
    calls = {"n": 0}

    @task(retries=2, retry_delay_seconds=0.1)
    async def aflaky() -> int:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("again")
        return 7

    @flow
    async def aflow() -> int:
        return await aflaky()

    started = time.monotonic()
    assert asyncio.run(aflow()) == 7
    assert time.monotonic() - started >= 0.19
    (tr,) = task_runs(default_store)
    assert tr.attempts == 3


# --- timeouts -------------------------------------------------------------------------


def test_sync_task_timeout_even_when_it_ignores_cancellation(default_store: Store) -> None:
    @task(timeout_seconds=0.3)
    def stuck() -> str:
        time.sleep(10)  # one C call: nothing can interrupt it from the outside
        return "never"

    @task
    def after() -> str:
        return "went on"

    @flow
    def handles_timeout() -> list[str]:
        try:
            stuck()
        except TaskTimeoutError as exc:
            return [str(exc), after()]
        return ["no timeout"]

    started = time.monotonic()
    message, went_on = handles_timeout()
    assert time.monotonic() - started < 3
    assert went_on == "went on"
    assert "stuck" in message and "0.3" in message
    by_name = {t.task_name: t for t in task_runs(default_store)}
    assert by_name["stuck"].state is StateType.FAILED
    assert by_name["stuck"].error is not None
    assert by_name["stuck"].error.type == "TaskTimeoutError"
    assert by_name["after"].state is StateType.COMPLETED
    assert only_run(default_store).state is StateType.COMPLETED


def test_timed_out_busy_task_thread_is_stopped() -> None:
    progress = {"n": 0}
    threads: list[threading.Thread] = []

    @task(timeout_seconds=0.2)
    def busy() -> None:
        threads.append(threading.current_thread())
        while True:  # swallows everything an Exception handler can catch
            try:
                progress["n"] += 1
                time.sleep(0.005)
            except Exception:
                pass

    @flow
    def f() -> None:
        with pytest.raises(TaskTimeoutError):
            busy()

    f()
    assert progress["n"] > 0
    (thread,) = threads
    thread.join(10)
    assert not thread.is_alive()  # the thread got the interrupt and stopped


def test_timeout_is_retried_like_any_failure(default_store: Store) -> None:
    calls = {"n": 0}

    @task(timeout_seconds=0.2, retries=1)
    def slow_once() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(5)
        return "second try"

    started = time.monotonic()
    assert run_task_in_flow(slow_once) == "second try"
    assert time.monotonic() - started < 3
    (tr,) = task_runs(default_store)
    assert tr.attempts == 2 and tr.state is StateType.COMPLETED


def test_async_task_timeout(default_store: Store) -> None:
    @task(timeout_seconds=0.2)
    async def slow() -> str:
        await asyncio.sleep(10)
        return "never"

    @flow
    async def aflow() -> str:
        try:
            await slow()
        except TaskTimeoutError:
            return "caught"
        return "no timeout"

    started = time.monotonic()
    assert asyncio.run(aflow()) == "caught"
    assert time.monotonic() - started < 3
    (tr,) = task_runs(default_store)
    assert tr.state is StateType.FAILED
    assert tr.error is not None and tr.error.type == "TaskTimeoutError"


def test_uncaught_task_timeout_fails_the_flow(default_store: Store) -> None:
    @task(timeout_seconds=0.1)
    def stuck() -> None:
        time.sleep(3)

    @flow
    def f() -> None:
        stuck()

    with pytest.raises(TaskTimeoutError):
        f()
    run = only_run(default_store)
    assert run.state is StateType.FAILED
    assert run.error is not None and run.error.type == "TaskTimeoutError"


# --- caching --------------------------------------------------------------------------

CACHE_CALLS: list[int] = []


@task(cache_key_fn=task_input_hash)
def cached_square(x: int) -> int:
    CACHE_CALLS.append(x)
    return x * x


@flow
def squares(x: int) -> int:
    return cached_square(x)


def test_cache_hit_across_flow_runs(default_store: Store) -> None:
    CACHE_CALLS.clear()
    assert squares(4) == 16
    assert squares(4) == 16
    assert CACHE_CALLS == [4]
    second, first = default_store.list_flow_runs()  # newest first
    (tr1,) = default_store.list_task_runs(first.id)
    (tr2,) = default_store.list_task_runs(second.id)
    assert not tr1.cached and tr1.state is StateType.COMPLETED
    assert tr2.cached and tr2.state is StateType.COMPLETED
    assert tr1.cache_key is not None and tr1.cache_key == tr2.cache_key
    assert tr1.id != tr2.id


def test_cache_misses_on_different_inputs(default_store: Store) -> None:
    CACHE_CALLS.clear()
    assert squares(2) == 4
    assert squares(3) == 9
    assert squares(2) == 4
    assert CACHE_CALLS == [2, 3]
    cached = [default_store.list_task_runs(r.id)[0].cached for r in default_store.list_flow_runs()]
    assert cached == [True, False, False]  # newest first


def test_different_tasks_with_equal_inputs_do_not_share_the_cache(default_store: Store) -> None:
    @task(cache_key_fn=task_input_hash)
    def double(x: int) -> int:
        return 2 * x

    @task(cache_key_fn=task_input_hash)
    def square(x: int) -> int:
        return x * x

    @flow
    def f() -> tuple[int, int]:
        return double(3), square(3)

    assert f() == (6, 9)
    assert f() == (6, 9)  # and the second run hits the right entries
    latest = default_store.list_flow_runs(limit=1)[0]
    assert all(t.cached for t in default_store.list_task_runs(latest.id))


def test_cache_key_fn_sees_the_task_in_its_context() -> None:
    seen: list[tuple[str | None, str | None, str | None]] = []

    def key_fn(ctx: Any, args: dict[str, Any]) -> str:
        seen.append((ctx.task_name, ctx.call_key, ctx.task_run_id))
        return "k"

    @task(cache_key_fn=key_fn)
    def t() -> None:
        pass

    @flow
    def f() -> None:
        t()

    f()
    ((name, call_key, task_run_id),) = seen
    assert (name, call_key) == ("t", "t[0]")
    assert task_run_id


def test_same_named_tasks_from_different_code_do_not_share_the_cache() -> None:
    def make(prefix: str) -> Any:
        @task(name="fetch", cache_key_fn=task_input_hash)
        def fetch(x: int) -> str:
            return f"{prefix}:{x}"

        return fetch

    users = make("users")
    orders = task(name="fetch", cache_key_fn=task_input_hash)(lambda x: f"orders:{x}")

    @flow
    def f() -> list[str]:
        return [users(1), orders(1)]

    assert f() == ["users:1", "orders:1"]


def test_cache_expiration(default_store: Store) -> None:
    calls: list[int] = []

    @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(seconds=0.4))
    def short_lived(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f() -> int:
        return short_lived(1)

    f()
    f()
    assert calls == [1]
    (tr,) = default_store.list_task_runs(default_store.list_flow_runs()[-1].id)
    expires_at = tr.cache_expires_at
    assert expires_at is not None
    wait_until(lambda: utcnow() > expires_at, what="the cached result to expire")
    f()
    assert calls == [1, 1]  # expired: ran again


def test_cache_expiration_in_seconds_and_custom_key_fn(default_store: Store) -> None:
    calls: list[str] = []

    @task(cache_key_fn=lambda ctx, args: args["name"].lower(), cache_expiration=60)
    def greet(name: str) -> str:
        calls.append(name)
        return f"hi {name}"

    @flow
    def f(name: str) -> str:
        return greet(name)

    assert f("Ann") == "hi Ann"
    assert f("ANN") == "hi Ann"  # same key, stored value
    assert calls == ["Ann"]


def test_cache_key_fn_returning_none_skips_the_cache() -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda ctx, args: None)
    def uncached(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f() -> None:
        uncached(1)

    f()
    f()
    assert calls == [1, 1]


def test_cache_key_fn_that_raises_fails_the_task_with_a_clear_error(default_store: Store) -> None:
    def bad_key(ctx: Any, args: dict[str, Any]) -> str:
        raise KeyError("no such field")

    @task(cache_key_fn=bad_key)
    def t() -> None:
        raise AssertionError("should not run")

    with pytest.raises(TaskCallError, match="cache_key_fn of task 't' raised KeyError"):
        run_task_in_flow(t)
    (tr,) = task_runs(default_store)
    assert tr.state is StateType.FAILED


def test_persist_result_false_with_cache_is_a_configuration_error() -> None:
    def fn() -> None:
        pass

    with pytest.raises(ConfigurationError, match="persist_result=False"):
        task(persist_result=False, cache_key_fn=task_input_hash)(fn)
    with pytest.raises(ConfigurationError, match="persist_result=False"):
        task(cache_key_fn=task_input_hash)(fn).with_options(persist_result=False)


def test_task_input_hash_depends_on_task_and_inputs() -> None:
    from legato.engine.context import RunContext

    def ctx(name: str) -> RunContext:
        return RunContext("r", "f", None, {}, task_name=name)  # type: ignore[arg-type]

    a = task_input_hash(ctx("a"), {"x": 1})
    assert a == task_input_hash(ctx("a"), {"x": 1})
    assert a != task_input_hash(ctx("a"), {"x": 2})
    assert a != task_input_hash(ctx("b"), {"x": 1})
    # Not JSON but picklable: still hashed; unpicklable: no key (no caching).
    assert task_input_hash(ctx("a"), {"x": {1, 2}}) is not None
    assert task_input_hash(ctx("a"), {"x": threading.Lock()}) is None


# --- hooks ----------------------------------------------------------------------------


def test_task_hooks_get_task_task_run_and_state(default_store: Store) -> None:
    seen: list[tuple[str, str, str, StateType, StateType, Any]] = []

    def on_done(t: Any, tr: TaskRun, state: State) -> None:
        seen.append(("completion", t.name, tr.call_key, tr.state, state.type, state.result()))

    def on_fail(t: Any, tr: TaskRun, state: State) -> None:
        exc = state.result(raise_on_failure=False)
        seen.append(("failure", t.name, tr.call_key, tr.state, state.type, repr(exc)))

    @task(on_completion=[on_done], on_failure=[on_fail], retries=1)
    def hooked(fail: bool) -> int:
        if fail:
            raise ValueError("nope")
        return 5

    @flow
    def f() -> None:
        hooked(False)
        with pytest.raises(ValueError):
            hooked(True)

    f()
    assert seen == [
        ("completion", "hooked", "hooked[0]", StateType.COMPLETED, StateType.COMPLETED, 5),
        # once, after the retry too failed
        (
            "failure",
            "hooked",
            "hooked[1]",
            StateType.FAILED,
            StateType.FAILED,
            "ValueError('nope')",
        ),
    ]


def test_hook_that_raises_does_not_change_the_outcome(default_store: Store) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("hook bug")

    calls: list[str] = []

    @task(on_completion=[broken, lambda *a: calls.append("second hook")])
    def t() -> int:
        return 1

    assert run_task_in_flow(t) == 1
    assert calls == ["second hook"]
    (tr,) = task_runs(default_store)
    assert tr.state is StateType.COMPLETED
    logs = [r.message for r in default_store.read_logs(tr.flow_run_id)]
    assert any("hook bug" in m and "'t'" in m for m in logs)


# --- results ------------------------------------------------------------------------


def test_unserializable_result_fails_the_task_naming_task_and_type(default_store: Store) -> None:
    @task
    def make_lock() -> Any:
        return threading.Lock()

    with pytest.raises(ResultNotSerializableError) as info:
        run_task_in_flow(make_lock)
    message = str(info.value)
    assert "make_lock" in message
    assert "lock" in message  # the type: _thread.lock
    assert info.value.value_type == "_thread.lock"
    (tr,) = task_runs(default_store)
    assert tr.state is StateType.FAILED
    assert tr.error is not None and tr.error.type == "ResultNotSerializableError"
    assert only_run(default_store).state is StateType.FAILED


def test_unserializable_result_is_fine_without_persistence() -> None:
    @task(persist_result=False)
    def make_lock() -> Any:
        return threading.Lock()

    @flow
    def f() -> bool:
        return make_lock().acquire()

    assert f() is True


def test_json_result_serializer(default_store: Store) -> None:
    @task(result_serializer="json")
    def data() -> dict[str, Any]:
        return {"a": [1, 2], "b": None}

    @task(result_serializer="json")
    def not_json() -> Any:
        return {1, 2}

    @flow
    def f() -> dict[str, Any]:
        value = data()
        with pytest.raises(ResultNotSerializableError, match="'json'"):
            not_json()
        return value

    assert f() == {"a": [1, 2], "b": None}
    tr = next(t for t in task_runs(default_store) if t.task_name == "data")
    assert tr.result_serializer == "json"
    stored = default_store.get_task_result(tr.id)
    assert stored is not None and stored.serializer == "json"
    assert json.loads(stored.payload) == {"a": [1, 2], "b": None}


def test_cloudpickle_result_serializer_stores_a_lambda(default_store: Store) -> None:
    @task(result_serializer="cloudpickle")
    def make_adder(n: int) -> Callable[[int], int]:
        return lambda x: x + n

    @task
    def make_adder_pickle(n: int) -> Callable[[int], int]:
        return lambda x: x + n

    @flow
    def f() -> int:
        add3 = make_adder(3)
        with pytest.raises(ResultNotSerializableError, match="pickle"):
            make_adder_pickle(3)
        return add3(4)

    assert f() == 7
    tr = next(t for t in task_runs(default_store) if t.task_name == "make_adder")
    stored = default_store.get_task_result(tr.id)
    assert stored is not None and stored.serializer == "cloudpickle"
    assert cloudpickle.loads(stored.payload)(10) == 13


def test_unknown_result_serializer_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="yaml"):
        task(result_serializer="yaml")(lambda: None)


# --- names, plain calls, options ------------------------------------------------------


def test_task_run_name_template_and_callable(default_store: Store) -> None:
    @task(task_run_name="load-{region}-{n}")
    def load(region: str, n: int) -> None:
        pass

    @task(task_run_name=lambda: "fixed-name")
    def other() -> None:
        pass

    @task(task_run_name="needs-{missing}")
    def odd(x: int) -> None:
        pass

    @flow
    def f() -> None:
        load("eu", 3)
        load(n=4, region="us")
        other()
        odd(1)

    f()
    names = {t.call_key: t.name for t in task_runs(default_store)}
    assert names == {
        "load[0]": "load-eu-3",
        "load[1]": "load-us-4",
        "other[0]": "fixed-name",
        "odd[0]": "needs-{missing}",  # a template it cannot fill is kept as given
    }


def test_task_outside_a_flow_runs_in_an_implicit_flow_run(default_store: Store) -> None:
    # More in test_standalone_tasks.py; `.fn` stays the untracked plain call.
    calls: list[int] = []

    @task(retries=3)
    def plain(x: int) -> int:
        calls.append(x)
        return x + 1

    assert plain(1) == 2
    assert plain.fn(2) == 3
    assert calls == [1, 2]
    (run,) = default_store.list_flow_runs()
    assert (run.flow_name, run.tags) == ("plain", ("standalone-task",))


def test_async_task_outside_a_flow_returns_a_coroutine() -> None:
    @task
    async def plain(x: int) -> int:
        return x * 2

    assert asyncio.run(plain(3)) == 6


def test_with_options_copies_and_changes(default_store: Store) -> None:
    fn = flaky_fn(failures=1)
    base = task(name="base")(fn)
    retried = base.with_options(name="retried", retries=1, tags=["x"])
    assert base.name == "base" and base.retries == 0
    assert retried.name == "retried" and retried.retries == 1
    assert retried.fn is base.fn
    assert run_task_in_flow(retried) == "ok"
    (tr,) = task_runs(default_store)
    assert (tr.task_name, tr.call_key, tr.attempts, tr.tags) == (
        "retried",
        "retried[0]",
        2,
        ("x",),
    )
    with pytest.raises(ConfigurationError, match=r"unknown task option.*retrys"):
        base.with_options(retrys=3)


def test_nested_task_calls_get_nested_keys(default_store: Store) -> None:
    @task
    def inner(x: int) -> int:
        return x + 1

    @task
    def outer(x: int) -> int:
        return inner(x) + inner(x)

    @flow
    def f() -> int:
        return outer(1) + outer.submit(10).result()

    assert f() == 4 + 22
    runs = {t.call_key: t for t in task_runs(default_store)}
    assert sorted(runs) == [
        "outer[0]",
        "outer[0]/inner[0]",
        "outer[0]/inner[1]",
        "outer[1]",
        "outer[1]/inner[0]",
        "outer[1]/inner[1]",
    ]
    assert runs["outer[0]/inner[1]"].parent_task_run_id == runs["outer[0]"].id
    assert runs["outer[1]/inner[0]"].parent_task_run_id == runs["outer[1]"].id
    assert runs["outer[0]"].parent_task_run_id is None
    assert all(t.state is StateType.COMPLETED for t in runs.values())


def test_run_context_in_task_attempts_count_up(default_store: Store) -> None:
    seen: list[tuple[int, str]] = []

    @task(retries=2)
    def ctx_task() -> None:
        ctx = get_run_context()
        seen.append((ctx.attempt, ctx.idempotency_key))
        if ctx.attempt < 3:
            raise ConnectionError("again")

    run_task_in_flow(ctx_task)
    run = only_run(default_store)
    key = f"{run.id}/ctx_task[0]"
    assert seen == [(1, key), (2, key), (3, key)]


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"retries": -1}, "retries must be a whole number >= 0"),
        ({"retries": 1.5}, "retries must be a whole number >= 0"),
        ({"retries": True}, "retries must be a whole number >= 0"),
        ({"retry_delay_seconds": -1}, "retry_delay_seconds must be >= 0"),
        ({"retry_delay_seconds": [1, -2]}, "retry_delay_seconds must be a number, a list"),
        ({"retry_delay_seconds": ["1s"]}, "retry_delay_seconds must be a number, a list"),
        ({"retry_delay_seconds": True}, "retry_delay_seconds cannot be a bool"),
        ({"retry_jitter_factor": -0.1}, "retry_jitter_factor must be >= 0"),
        ({"retry_on": "ValueError"}, "retry_on must be exception types"),
        ({"retry_on": (ValueError, 3)}, "retry_on must be exception types"),
        ({"timeout_seconds": 0}, "timeout_seconds must be > 0"),
        ({"timeout_seconds": -5}, "timeout_seconds must be > 0"),
        ({"cache_expiration": "1h"}, "cache_expiration must be a timedelta or a number"),
        ({"result_serializer": "xml"}, "unknown result_serializer 'xml'"),
    ],
)
def test_invalid_options_raise_configuration_error(options: dict[str, Any], needle: str) -> None:
    def fn() -> None:
        pass

    with pytest.raises(ConfigurationError) as info:
        task(name="bad_task", **options)(fn)
    assert needle in str(info.value)
    if "serializer" not in needle and "cache_expiration" not in needle:
        assert "bad_task" in str(info.value)  # says which task


def test_task_needs_a_function() -> None:
    with pytest.raises(ConfigurationError, match="needs a function"):
        task(42)  # type: ignore[call-overload]


def test_inputs_are_recorded_for_every_call_only_when_asked(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    @task(record_inputs=True)
    def shout(word: str, times: int = 1) -> str:
        return word.upper() * times

    @task
    def quiet(word: str) -> str:
        return word

    monkeypatch.setenv("LEGATO_RECORD_INPUTS", "1")

    @task
    def from_env(rows: list[int]) -> int:
        return len(rows)

    @flow
    def speak() -> None:
        shout("hi", times=2)
        quiet("shh")
        from_env([1, 2, 3])

    speak()
    recorded = {tr.task_name: tr.inputs for tr in task_runs(default_store)}
    assert recorded == {
        "shout": {"word": "'hi'", "times": "2"},
        "quiet": None,
        "from_env": {"rows": "[1, 2, 3]"},
    }


def test_a_retried_task_run_keeps_each_attempt_for_the_timeline(default_store: Store) -> None:
    flaky = task(retries=2, retry_delay_seconds=0.05)(flaky_fn(2))

    @task
    def steady() -> int:
        return 1

    @flow
    def shaky() -> None:
        flaky()
        steady()

    shaky()
    by_name = {tr.task_name: tr for tr in task_runs(default_store)}
    history = by_name["flaky"].attempt_log
    assert [(a.attempt, a.state) for a in history] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]
    assert history[0].error is not None and history[0].error.type == "ConnectionError"
    assert history[0].error.traceback is None and history[2].error is None
    for earlier, later in itertools.pairwise(history):
        assert earlier.start_time and earlier.end_time and later.start_time
        assert earlier.start_time <= earlier.end_time
        assert later.start_time - earlier.end_time >= timedelta(seconds=0.05)  # the delay
    assert by_name["steady"].attempt_log == ()  # one attempt: nothing kept


def test_a_task_failed_in_one_execution_and_resumed_keeps_both_attempts(
    default_store: Store, tmp_path: Any
) -> None:
    from legato import resume_flow_run

    marker = tmp_path / "ready"

    @task
    def gate() -> str:
        if not marker.exists():
            raise RuntimeError("not yet")
        return "open"

    @flow
    def gated() -> str:
        return gate()

    with pytest.raises(RuntimeError):
        gated()
    run = only_run(default_store)
    (failed,) = task_runs(default_store)
    assert failed.attempt_log == ()  # a single attempt so far
    marker.touch()
    assert resume_flow_run(run.id, flow=gated) == "open"
    (resumed,) = task_runs(default_store)
    assert [(a.attempt, a.state) for a in resumed.attempt_log] == [(1, "failed"), (2, "completed")]
    first, second = resumed.attempt_log
    assert first.start_time == failed.start_time and first.end_time == failed.end_time
    assert first.error is not None and first.error.message == "not yet"
    assert second.start_time is not None and first.end_time is not None
    assert second.start_time >= first.end_time
