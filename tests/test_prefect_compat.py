"""Prefect 3's public modules and small API forms, as Prefect documents them.

Each test follows a documented Prefect pattern with its ``prefect`` imports
renamed to ``legato``: the modules (``legato.logging``, ``.flow_runs``,
``.transactions``, ``.runtime``, ``.context``, ``.futures``, ``.states``),
``return_state=True`` on task calls, ``.submit`` and ``.map``, and the hook
decorators (``@my_task.on_failure``...).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

import legato
from legato import FlowPaused, StateType, flow, task
from legato.errors import ConfigurationError, FlowRunFailed, TaskCallError
from legato.records import FlowRun, TaskRun, utcnow
from legato.store.base import Store


def only_run(store: Store) -> FlowRun:
    runs = store.list_flow_runs(limit=10)
    assert len(runs) == 1, runs
    return runs[0]


def task_runs(store: Store) -> list[TaskRun]:
    return store.list_task_runs(only_run(store).id)


# --- modules ----------------------------------------------------------------------


def test_prefect_module_names_import() -> None:
    from legato.context import get_run_context
    from legato.flow_runs import pause_flow_run, resume_flow_run, suspend_flow_run
    from legato.futures import (
        PrefectFuture,
        as_completed,
        resolve_futures_to_results,
        resolve_futures_to_states,
        wait,
    )
    from legato.logging import disable_run_logger, get_run_logger
    from legato.runtime import flow_run, task_run
    from legato.states import (
        Cancelled,
        Completed,
        Crashed,
        Failed,
        Paused,
        Pending,
        Running,
        Scheduled,
        State,
    )
    from legato.task_runners import ThreadPoolTaskRunner
    from legato.transactions import get_transaction, transaction

    assert get_run_logger is legato.get_run_logger
    assert pause_flow_run is legato.pause_flow_run
    assert resume_flow_run is legato.resume_flow_run
    assert suspend_flow_run is legato.suspend_flow_run
    assert get_run_context is legato.get_run_context
    assert transaction is legato.transaction
    assert PrefectFuture is legato.LegatoFuture is legato.PrefectFuture
    assert as_completed is legato.as_completed and wait is legato.wait
    assert ThreadPoolTaskRunner is legato.ThreadPoolTaskRunner
    assert State is legato.State
    assert callable(disable_run_logger) and callable(get_transaction)
    assert callable(resolve_futures_to_states) and callable(resolve_futures_to_results)
    for constructor in (Cancelled, Completed, Crashed, Failed, Paused, Pending, Running):
        assert isinstance(constructor(), State)
    assert isinstance(Scheduled(), State)
    assert flow_run.id is None and task_run.id is None


def test_legato_logging_does_not_shadow_the_standard_logging_module() -> None:
    code = (
        "import legato, legato.logging, legato.engine.logs, logging\n"
        "assert logging.__name__ == 'logging' and hasattr(logging, 'getLogger')\n"
        "assert legato.engine.logs.logging is logging\n"
        "assert legato.logging is not logging\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_import_legato_does_not_load_the_runtime_modules() -> None:
    code = (
        "import sys, legato\n"
        "loaded = [m for m in ('legato.logging', 'legato.runtime', 'legato.transactions') "
        "if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- legato.logging ---------------------------------------------------------------


@task
def logs_something(x: int) -> int:
    from legato.logging import get_run_logger

    get_run_logger().info("working on %s", x)
    return x + 1


def test_get_run_logger_from_legato_logging_stores_lines(default_store: Store) -> None:
    @flow
    def logging_flow() -> int:
        return logs_something(1)

    assert logging_flow() == 2
    lines = [r.message for r in default_store.read_logs(only_run(default_store).id)]
    assert "working on 1" in lines


def test_disable_run_logger_lets_a_task_function_be_tested_directly() -> None:
    from legato.logging import disable_run_logger

    # Outside a run, get_run_logger() raises; inside the block it is silent.
    with pytest.raises(TaskCallError):
        logs_something.fn(1)
    with disable_run_logger():
        assert logs_something.fn(41) == 42


def test_disable_run_logger_silences_run_loggers_inside_a_flow(default_store: Store) -> None:
    from legato.logging import disable_run_logger

    @flow
    def quiet_flow() -> int:
        return logs_something(1)

    with disable_run_logger():
        assert quiet_flow() == 2
    lines = [r.message for r in default_store.read_logs(only_run(default_store).id)]
    assert "working on 1" not in lines


# --- legato.flow_runs ---------------------------------------------------------------


@task
def step(x: int) -> int:
    return x * 10


@flow
def suspending_flow(x: int) -> int:
    from legato.flow_runs import suspend_flow_run

    before = step(x)
    suspend_flow_run()
    return before + 1


def test_suspend_flow_run_releases_the_process_until_resumed(default_store: Store) -> None:
    from legato.flow_runs import resume_flow_run

    with pytest.raises(FlowPaused) as info:
        suspending_flow(2)
    run = default_store.get_flow_run(info.value.run_id)
    assert run is not None and run.state is StateType.PAUSED
    assert run.owner is None  # the process is free
    # Prefect's default: a suspended run times out after one hour.
    assert run.pause is not None and run.pause.timeout_at is not None
    left = run.pause.timeout_at - utcnow()
    assert timedelta(minutes=59) < left <= timedelta(hours=1)
    assert resume_flow_run(run.id) == 21


def test_suspend_flow_run_refuses_another_run_id(default_store: Store) -> None:
    from legato.flow_runs import suspend_flow_run

    @flow
    def suspends_other() -> None:
        suspend_flow_run(flow_run_id="someone-else")

    with pytest.raises(ConfigurationError, match="only the current run"):
        suspends_other()


# --- legato.transactions ---------------------------------------------------------------


def test_get_transaction_returns_the_innermost_open_transaction(default_store: Store) -> None:
    from legato.transactions import get_transaction, transaction

    seen: dict[str, Any] = {}

    @flow
    def txn_flow() -> None:
        seen["before"] = get_transaction()
        with transaction() as outer:
            seen["outer"] = (get_transaction(), outer)
            with transaction() as inner:
                seen["inner"] = (get_transaction(), inner)
            seen["back"] = (get_transaction(), outer)
        seen["after"] = get_transaction()

    assert get_transaction() is None
    txn_flow()
    assert seen["before"] is None and seen["after"] is None
    for key in ("outer", "inner", "back"):
        got, expected = seen[key]
        assert got is expected, key
    assert seen["inner"][0] is not seen["outer"][0]


# --- legato.runtime and legato.context ---------------------------------------------------


def test_runtime_attributes_are_empty_outside_a_run() -> None:
    from legato.runtime import flow_run, task_run

    assert flow_run.id is None
    assert flow_run.name is None
    assert flow_run.flow_name is None
    assert flow_run.parameters == {}
    assert flow_run.tags == []
    assert flow_run.run_count == 0
    assert flow_run.parent_flow_run_id is None
    assert task_run.id is None
    assert task_run.name is None
    assert task_run.task_name is None
    assert task_run.tags == []
    assert task_run.run_count == 0
    with pytest.raises(AttributeError, match="available"):
        _ = flow_run.no_such_attribute


def test_runtime_attributes_read_the_current_run(default_store: Store) -> None:
    from legato.context import get_run_context
    from legato.runtime import flow_run, task_run

    seen: dict[str, Any] = {}
    attempts = {"n": 0}

    @task(name="measure", tags=["t1"], retries=1)
    def measure() -> None:
        attempts["n"] += 1
        ctx = get_run_context()
        seen["task"] = {
            "id": (task_run.id, ctx.task_run_id),
            "name": task_run.name,
            "task_name": task_run.task_name,
            "tags": task_run.tags,
            "run_count": task_run.run_count,
            "flow_id": flow_run.id,
        }
        if attempts["n"] == 1:
            raise ConnectionError("first attempt fails")

    @flow(name="runtime-flow", tags=["f1"])
    def runtime_flow(x: int) -> None:
        seen["flow"] = {
            "id": flow_run.id,
            "name": flow_run.name,
            "flow_name": flow_run.flow_name,
            "parameters": flow_run.parameters,
            "tags": flow_run.tags,
            "run_count": flow_run.run_count,
            "task_id": task_run.id,
        }
        measure()

    runtime_flow(7)
    run = only_run(default_store)
    assert seen["flow"] == {
        "id": run.id,
        "name": run.name,
        "flow_name": "runtime-flow",
        "parameters": {"x": 7},
        "tags": ["f1"],
        "run_count": 1,
        "task_id": None,
    }
    [record] = task_runs(default_store)
    task_seen = seen["task"]
    assert task_seen["id"] == (record.id, record.id)
    assert task_seen["name"] == record.name == "measure[0]"
    assert task_seen["task_name"] == "measure"
    assert task_seen["tags"] == ["t1"]
    assert task_seen["run_count"] == 2  # read on the retry
    assert task_seen["flow_id"] == run.id


def test_runtime_task_run_parameters_and_templated_name(default_store: Store) -> None:
    from legato.runtime import task_run

    seen: list[tuple[object, object]] = []

    @task(task_run_name="load-{region}-{n}")
    def load(region: str, n: int = 1, *, verbose: bool = False) -> None:
        seen.append((task_run.parameters, task_run.name))

    @task
    def plain(x: int) -> None:
        seen.append((task_run.parameters, task_run.name))

    @flow
    def loading() -> None:
        load("eu", n=3)
        plain(5)

    loading()
    assert seen == [
        ({"region": "eu", "n": 3}, "load-eu-3"),
        ({"x": 5}, "plain[0]"),
    ]
    assert [r.name for r in task_runs(default_store)] == ["load-eu-3", "plain[0]"]
    assert task_run.parameters == {}


# --- legato.futures -----------------------------------------------------------------------


@task
def double(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative {x}")
    return 2 * x


def test_resolve_futures_to_states_and_results_in_nested_collections(
    default_store: Store,
) -> None:
    from legato.futures import (
        PrefectFuture,
        resolve_futures_to_results,
        resolve_futures_to_states,
    )

    @flow
    def nested() -> tuple[Any, Any, bool]:
        a = double.submit(1)
        b = double.submit(-1)
        c = double.submit(3)
        expr = {"a": a, "more": [b, (c, "plain")], "n": 5}
        states = resolve_futures_to_states(expr)
        results = resolve_futures_to_results({"a": a, "more": [(c, "plain")]})
        return states, results, isinstance(a, PrefectFuture)

    states, results, is_future = nested()
    assert is_future
    assert states["n"] == 5
    assert states["a"].is_completed() and states["a"].result() == 2
    failed = states["more"][0]
    assert failed.is_failed()
    assert isinstance(failed.result(raise_on_failure=False), ValueError)
    assert states["more"][1][0].result() == 6 and states["more"][1][1] == "plain"
    assert results == {"a": 2, "more": [(6, "plain")]}


# --- legato.states -------------------------------------------------------------------------


def test_state_constructors_carry_message_and_data() -> None:
    from legato.states import (
        Cancelled,
        Completed,
        Crashed,
        Failed,
        Paused,
        Pending,
        Running,
        Scheduled,
    )

    done = Completed(message="all good", data={"rows": 3})
    assert done.is_completed() and done.is_final() and not done.is_failed()
    assert done.type == StateType.COMPLETED and done.name == "Completed"
    assert done.message == "all good" and done.result() == {"rows": 3}
    assert Completed().message is None

    error = RuntimeError("boom")
    failed = Failed(data=error)
    assert failed.is_failed() and failed.message == "boom"
    with pytest.raises(RuntimeError, match="boom"):
        failed.result()
    assert failed.result(raise_on_failure=False) is error

    bare = Failed(message="upstream went away")
    with pytest.raises(FlowRunFailed, match="upstream went away"):
        bare.result()
    assert Crashed(message="killed").is_crashed()
    assert Cancelled().is_cancelled() and Cancelled().is_final()
    assert Pending().is_pending() and not Pending().is_final()
    assert Running().is_running()
    assert Paused().is_paused() and not Paused().is_final()
    assert Scheduled().is_scheduled() and Scheduled().is_pending()


# --- return_state=True ------------------------------------------------------------------------


def test_direct_call_with_return_state_returns_the_state(default_store: Store) -> None:
    @flow
    def states_flow() -> tuple[Any, Any, str]:
        ok = double(4, return_state=True)
        bad = double(-4, return_state=True)
        return ok, bad, "flow went on"

    ok, bad, tail = states_flow()
    assert tail == "flow went on"
    assert ok.is_completed() and ok.result() == 8
    assert bad.is_failed() and "negative -4" in (bad.message or "")
    with pytest.raises(ValueError, match="negative -4"):
        bad.result()
    records = {r.call_key: r for r in task_runs(default_store)}
    assert ok.run_id == records["double[0]"].id
    assert records["double[0]"].state is StateType.COMPLETED
    assert records["double[1]"].state is StateType.FAILED
    assert only_run(default_store).state is StateType.COMPLETED


def test_return_state_is_passed_to_a_task_that_takes_it(default_store: Store) -> None:
    @task
    def echo(return_state: bool) -> str:
        return f"got {return_state}"

    @flow
    def echo_flow() -> tuple[str, str]:
        return echo(return_state=True), echo.submit(return_state=False).result()

    assert echo_flow() == ("got True", "got False")


def test_return_state_outside_a_flow() -> None:
    ok = double(2, return_state=True)
    assert ok.is_completed() and ok.result() == 4
    assert double(-2, return_state=True).is_failed()


def test_async_task_with_return_state(default_store: Store) -> None:
    @task
    async def slow_double(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise ValueError("negative")
        return 2 * x

    @flow
    async def async_flow() -> tuple[Any, Any, Any]:
        ok = await slow_double(5, return_state=True)
        bad = await slow_double(-5, return_state=True)
        sync_bad = double(-6, return_state=True)  # a sync task, run off the event loop
        return ok, bad, sync_bad

    ok, bad, sync_bad = asyncio.run(async_flow())
    assert ok.is_completed() and ok.result() == 10
    assert bad.is_failed()
    assert sync_bad.is_failed() and "negative -6" in (sync_bad.message or "")


def test_submit_with_return_state_waits_and_returns_the_state(default_store: Store) -> None:
    # As in Prefect's pause docs: `terminal_state = task_one.submit(return_state=True)`.
    @flow
    def submit_flow() -> tuple[bool, bool]:
        terminal_state = double.submit(3, return_state=True)
        failed_state = double.submit(-3, return_state=True)
        return (
            terminal_state.type == StateType.COMPLETED and terminal_state.result() == 6,
            failed_state.is_failed(),
        )

    assert submit_flow() == (True, True)


def test_map_with_return_state_returns_states_in_order(default_store: Store) -> None:
    @flow
    def map_flow() -> list[Any]:
        return double.map([1, -2, 3], return_state=True)

    states = map_flow()
    assert [s.type for s in states] == [
        StateType.COMPLETED,
        StateType.FAILED,
        StateType.COMPLETED,
    ]
    assert states[0].result() == 2 and states[2].result() == 6


# --- hook decorators ------------------------------------------------------------------------------


def test_task_hook_decorators_register_and_return_the_function(default_store: Store) -> None:
    calls: list[tuple[str, str, str]] = []

    @task
    def flaky(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return x

    @flaky.on_completion
    def completed(tsk: Any, task_run: TaskRun, state: Any) -> None:
        calls.append(("completion", task_run.call_key, state.type.value))

    @flaky.on_failure
    def failed(tsk: Any, task_run: TaskRun, state: Any) -> None:
        calls.append(("failure", task_run.call_key, state.type.value))

    assert completed.__name__ == "completed" and callable(failed)  # returned unchanged
    assert flaky.on_completion == [completed] and flaky.on_failure == [failed]

    @flow
    def hooked_flow() -> None:
        flaky(1)
        with pytest.raises(ValueError):
            flaky(-1)

    hooked_flow()
    assert calls == [
        ("completion", "flaky[0]", "completed"),
        ("failure", "flaky[1]", "failed"),
    ]


def test_on_rollback_decorator_compensates_in_a_transaction(default_store: Store) -> None:
    from legato.transactions import transaction

    undone: list[int] = []

    @task
    def reserve(x: int) -> int:
        return x

    @reserve.on_rollback
    def release(tsk: Any, task_run: TaskRun, state: Any) -> None:
        undone.append(state.result())

    @flow
    def booking() -> None:
        with pytest.raises(RuntimeError), transaction():
            reserve(1)
            reserve(2)
            raise RuntimeError("payment declined")

    booking()
    assert undone == [2, 1]


def test_flow_hook_decorators_register_and_return_the_function(default_store: Store) -> None:
    seen: list[tuple[str, str]] = []

    @flow
    def maybe_fails(fail: bool) -> str:
        if fail:
            raise RuntimeError("requested failure")
        return "fine"

    @maybe_fails.on_completion
    def on_done(flw: Any, flow_run: FlowRun, state: Any) -> None:
        seen.append(("completion", state.type.value))

    @maybe_fails.on_failure
    def on_failed(flw: Any, flow_run: FlowRun, state: Any) -> None:
        seen.append(("failure", state.type.value))

    @maybe_fails.on_cancellation
    def on_cancelled(flw: Any, flow_run: FlowRun, state: Any) -> None:
        seen.append(("cancellation", state.type.value))

    @maybe_fails.on_crashed
    def on_crashed(flw: Any, flow_run: FlowRun, state: Any) -> None:
        seen.append(("crashed", state.type.value))

    assert on_done.__name__ == "on_done"
    assert maybe_fails.on_cancellation == [on_cancelled]
    assert maybe_fails.on_crashed == [on_crashed]
    assert maybe_fails(False) == "fine"
    with pytest.raises(RuntimeError):
        maybe_fails(True)
    assert seen == [("completion", "completed"), ("failure", "failed")]


def test_hook_lists_still_work_as_lists_and_carry_over_with_options() -> None:
    def first(*args: Any) -> None: ...

    def second(*args: Any) -> None: ...

    @task(on_completion=[first])
    def listed() -> None: ...

    listed.on_completion.append(second)
    assert list(listed.on_completion) == [first, second]
    copy = listed.with_options(name="copy")
    assert list(copy.on_completion) == [first, second]
    copy.on_failure(first)
    assert listed.on_failure == []  # the copy has lists of its own

    @flow(on_failure=[first])
    def listed_flow() -> None: ...

    listed_flow.on_failure(second)
    assert list(listed_flow.with_options(name="copy").on_failure) == [first, second]
    with pytest.raises(ConfigurationError, match="hook must be a function"):
        listed.on_failure(42)  # type: ignore[arg-type]
