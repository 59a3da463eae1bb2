"""Flows: calling, recording, parameters, states, subflows, async, retries, timeouts, hooks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from _waiting import wait_until
from legato import (
    FlowCancelled,
    ParameterValidationError,
    State,
    StateType,
    flow,
    get_run_context,
    get_run_logger,
    task,
)
from legato.engine.context import FLOW_CONTEXT
from legato.errors import FlowTimeoutError
from legato.store.base import Store

# Every test here runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("backend")


@task
def add(x: int, y: int) -> int:
    return x + y


@flow
def adder(a: int, b: int = 2) -> int:
    return add(add(a, b), 10)


def only_run(store: Store) -> Any:
    runs = store.list_flow_runs(limit=10)
    assert len(runs) == 1
    return runs[0]


def test_flow_returns_value_and_records_run_and_tasks(default_store: Store) -> None:
    assert adder(1) == 13
    run = only_run(default_store)
    assert run.flow_name == "adder"
    assert run.state is StateType.COMPLETED
    assert run.parameters == {"a": 1, "b": 2}  # defaults are recorded too
    assert run.start_time is not None and run.end_time is not None
    tasks = default_store.list_task_runs(run.id)
    assert [t.call_key for t in tasks] == ["add[0]", "add[1]"]
    assert all(t.state is StateType.COMPLETED and t.attempts == 1 for t in tasks)
    # The second call received the first one's result: a recorded data edge... only for
    # non-plain objects; ints are not tracked by identity.
    assert tasks[1].dependencies == ()


def test_parameters_are_validated_and_coerced(default_store: Store) -> None:
    @flow
    def typed(day: date, n: int) -> tuple[date, int]:
        return day, n

    assert typed("2026-01-02", "3") == (date(2026, 1, 2), 3)
    with pytest.raises(ParameterValidationError) as info:
        typed("not a date", 1)
    assert "'day'" in str(info.value)
    with pytest.raises(ParameterValidationError, match="required but missing"):
        typed(n=1)  # type: ignore[call-arg]
    with pytest.raises(ParameterValidationError, match="unknown parameter 'x'"):
        typed("2026-01-02", 1, x=3)  # type: ignore[call-arg]
    # Nothing was recorded for the invalid calls.
    assert len(default_store.list_flow_runs()) == 1


def test_validation_can_be_turned_off() -> None:
    @flow(validate_parameters=False)
    def raw(n: int) -> Any:
        return n

    assert raw("3") == "3"


def test_failure_raises_and_records_error(default_store: Store) -> None:
    @task
    def boom() -> None:
        raise ValueError("bad input row 7")

    @flow
    def failing() -> None:
        boom()

    with pytest.raises(ValueError, match="bad input row 7"):
        failing()
    run = only_run(default_store)
    assert run.state is StateType.FAILED
    assert run.error is not None and run.error.type == "ValueError"
    (tr,) = default_store.list_task_runs(run.id)
    assert tr.state is StateType.FAILED
    assert tr.error is not None and "bad input row 7" in tr.error.message
    assert tr.inputs == {}


def test_return_state(default_store: Store) -> None:
    @flow
    def fails() -> None:
        raise RuntimeError("nope")

    state = fails(return_state=True)
    assert isinstance(state, State)
    assert state.type is StateType.FAILED
    with pytest.raises(RuntimeError):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), RuntimeError)
    ok = adder(1, return_state=True)
    assert ok.is_completed() and ok.result() == 13


def test_subflow_creates_linked_child_run(default_store: Store) -> None:
    @flow
    def child(x: int) -> int:
        return add(x, 1)

    @flow
    def parent() -> int:
        return child(1) + child(2)

    assert parent() == 5
    runs = default_store.list_flow_runs()
    parent_run = next(r for r in runs if r.flow_name == "parent")
    children = default_store.list_flow_runs(parent_run_id=parent_run.id)
    assert sorted(c.parent_call_key or "" for c in children) == ["child[0]", "child[1]"]
    assert all(c.state is StateType.COMPLETED for c in children)


def test_async_flow_and_tasks(default_store: Store) -> None:
    @task
    async def slow_double(x: int) -> int:
        await asyncio.sleep(0.01)
        return 2 * x

    @flow
    async def async_flow(n: int) -> list[int]:
        first = await slow_double(n)
        rest = await asyncio.gather(*(slow_double(i) for i in range(3)))
        return [first, *rest]

    assert asyncio.run(async_flow(5)) == [10, 0, 2, 4]
    run = only_run(default_store)
    assert run.state is StateType.COMPLETED
    keys = sorted(t.call_key for t in default_store.list_task_runs(run.id))
    assert keys == ["slow_double[0]", "slow_double[1]", "slow_double[2]", "slow_double[3]"]


def test_sync_flow_can_call_async_task() -> None:
    @task
    async def inc(x: int) -> int:
        return x + 1

    @flow
    def f() -> int:
        return inc(1)  # type: ignore[return-value]

    assert f() == 2


def test_flow_retries_replay_completed_tasks(default_store: Store) -> None:
    calls = {"step": 0, "flaky": 0}

    @task
    def step() -> str:
        calls["step"] += 1
        return "done"

    @task
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 2:
            raise ConnectionError("try again")
        return "ok"

    @flow(retries=2, retry_delay_seconds=0)
    def retried() -> str:
        return step() + flaky()

    assert retried() == "doneok"
    assert calls == {"step": 1, "flaky": 2}
    run = only_run(default_store)
    assert run.attempts == 2 and run.state is StateType.COMPLETED


def test_flow_timeout(default_store: Store) -> None:
    @flow(timeout_seconds=0.3)
    def sleepy() -> None:
        time.sleep(5)

    started = time.monotonic()
    with pytest.raises(FlowTimeoutError):
        sleepy()
    assert time.monotonic() - started < 3
    assert only_run(default_store).state is StateType.FAILED


def test_flow_hooks_receive_flow_run_and_state() -> None:
    seen: list[tuple[str, str, StateType]] = []

    def on_done(f: Any, run: Any, state: State) -> None:
        seen.append(("completion", f.name, state.type))

    def on_fail(f: Any, run: Any, state: State) -> None:
        seen.append(("failure", run.flow_name, state.type))

    @flow(on_completion=[on_done], on_failure=[on_fail])
    def hooked(fail: bool) -> None:
        if fail:
            raise KeyError("x")

    hooked(False)
    with pytest.raises(KeyError):
        hooked(True)
    assert seen == [
        ("completion", "hooked", StateType.COMPLETED),
        ("failure", "hooked", StateType.FAILED),
    ]


def test_logs_and_prints_are_stored(default_store: Store) -> None:
    @task(log_prints=True)
    def chatty() -> None:
        print("hello from the task")
        get_run_logger().warning("careful %s", "now")

    @flow(log_prints=True)
    def logged() -> None:
        get_run_logger().info("flow says hi")
        print("flow print")
        chatty()

    logged()
    run = only_run(default_store)
    logs = default_store.read_logs(run.id)
    messages = [r.message for r in logs]
    assert messages == ["flow says hi", "flow print", "hello from the task", "careful now"]
    (tr,) = default_store.list_task_runs(run.id)
    assert [r.task_run_id for r in logs] == [None, None, tr.id, tr.id]


def test_run_context_ids() -> None:
    seen: dict[str, Any] = {}

    @task
    def inspect_ctx() -> None:
        ctx = get_run_context()
        seen["task"] = (ctx.flow_run_id, ctx.task_run_id, ctx.attempt, ctx.idempotency_key)

    @flow
    def ctx_flow() -> None:
        seen["flow"] = get_run_context().flow_run_id
        inspect_ctx()

    ctx_flow()
    flow_run_id, task_run_id, attempt, key = seen["task"]
    assert flow_run_id == seen["flow"]
    assert task_run_id and attempt == 1
    assert key == f"{flow_run_id}/inspect_ctx[0]"


def test_with_options_copies(default_store: Store) -> None:
    renamed = adder.with_options(name="renamed_adder")
    assert renamed(1, 1) == 12
    assert only_run(default_store).flow_name == "renamed_adder"
    assert adder.name == "adder"


def test_cancelled_flow_raises_flow_cancelled(default_store: Store) -> None:
    from legato.records import utcnow

    @task
    def request_cancel() -> None:
        ctx = get_run_context()
        default_store.request_cancellation(ctx.flow_run_id, now=utcnow())
        engine = FLOW_CONTEXT.get()
        assert engine is not None
        # The monitor's next heartbeat tells the engine; the next task boundary stops.
        wait_until(lambda: engine.cancel_requested, what="the engine to learn of the cancel")

    @task
    def never() -> None:
        raise AssertionError("ran after cancellation")

    @flow
    def cancellable() -> None:
        request_cancel()
        never()

    with pytest.raises(FlowCancelled):
        cancellable()
    run = only_run(default_store)
    assert run.state is StateType.CANCELLED
    assert [t.call_key for t in default_store.list_task_runs(run.id)] == ["request_cancel[0]"]


def test_cancel_requested_by_a_failing_attempt_stops_flow_retries(default_store: Store) -> None:
    from legato.records import utcnow

    attempts = []

    @task
    def cancel_then_fail() -> None:
        attempts.append(1)
        default_store.request_cancellation(get_run_context().flow_run_id, now=utcnow())
        raise RuntimeError("failing after the cancel request")

    @flow(retries=3)
    def retried() -> None:
        cancel_then_fail()

    with pytest.raises(FlowCancelled):
        retried()
    assert attempts == [1]
    assert only_run(default_store).state is StateType.CANCELLED


def test_cancel_while_waiting_for_a_flow_retry(default_store: Store) -> None:
    import threading

    from legato.client import Client

    attempts = []

    @task
    def always_fails() -> None:
        attempts.append(1)
        raise RuntimeError("down")

    @flow(retries=3, retry_delay_seconds=1.5)
    def slow_retries() -> None:
        always_fails()

    def cancel_when_pending() -> None:
        client = Client(default_store)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            runs = default_store.list_flow_runs()
            if runs and runs[0].state is StateType.PENDING and runs[0].attempts == 1:
                client.cancel_run(runs[0].id)
                return
            time.sleep(0.02)

    canceller = threading.Thread(target=cancel_when_pending)
    canceller.start()
    state = slow_retries(return_state=True)
    canceller.join()
    assert state.type is StateType.CANCELLED
    assert attempts == [1]
    assert only_run(default_store).state is StateType.CANCELLED


def test_non_finite_float_parameters_survive_a_resume(default_store: Store) -> None:
    from legato.engine.calls import resume_run

    seen: list[float] = []

    @flow
    def takes_floats(x: float) -> float:
        seen.append(x)
        if len(seen) == 1:
            raise RuntimeError("first attempt fails")
        return x

    state = takes_floats(float("inf"), return_state=True)
    assert state.is_failed()
    assert default_store.get_parameters_blob(state.run_id or "") is not None
    assert resume_run(state.run_id or "", flow=takes_floats).result() == float("inf")
    assert seen == [float("inf"), float("inf")]


def test_parameter_schema_types_what_it_can_and_stays_usable_otherwise() -> None:
    @flow
    def typed(n: int, name: str = "x") -> None:
        pass

    @flow
    def odd(thing: Callable[[int], int], n: int = 1) -> None:  # no JSON Schema for it
        pass

    schema = typed.parameter_model.json_schema()
    assert schema["properties"]["n"]["type"] == "integer" and schema["required"] == ["n"]
    untyped = odd.parameter_model.json_schema()
    assert untyped == {
        "type": "object",
        "properties": {"thing": {"title": "thing"}, "n": {"title": "n"}},
        "required": ["thing"],
    }
