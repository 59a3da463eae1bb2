"""Tasks called outside any flow run as tracked task runs (Prefect 3's behaviour).

Each such call runs in an implicit flow run of its own, named after the task
and tagged ``standalone-task``: retries, timeouts, caching and hooks apply as
inside a flow, and the caller gets the value or the task's own exception.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading

import pytest

from _waiting import wait_until
from legato import flow, task
from legato.cache_policies import DEFAULT, INPUTS
from legato.engine.standalone import STANDALONE_TAG
from legato.errors import TaskTimeoutError
from legato.records import FlowRun, TaskRun
from legato.states import State, StateType
from legato.store.base import Store


class Boom(Exception):
    pass


def runs_of(store: Store, name: str) -> list[FlowRun]:
    return [r for r in store.list_flow_runs(limit=500) if r.flow_name == name]


def only_run(store: Store, name: str) -> tuple[FlowRun, list[TaskRun]]:
    (run,) = runs_of(store, name)
    return run, store.list_task_runs(run.id)


def finished(store: Store, name: str, count: int = 1) -> bool:
    runs = runs_of(store, name)
    return len(runs) == count and all(r.state.is_final for r in runs)


@pytest.mark.usefixtures("backend")
def test_retries_happen_outside_a_flow_and_are_recorded(default_store: Store) -> None:
    attempts: list[int] = []

    @task(retries=2)
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) < 3:
            raise Boom("not yet")
        return x + 1

    assert flaky(1) == 2
    assert attempts == [1, 1, 1]
    run, (tr,) = only_run(default_store, "flaky")
    assert run.state is StateType.COMPLETED and STANDALONE_TAG in run.tags
    assert (tr.call_key, tr.state, tr.attempts) == ("flaky[0]", StateType.COMPLETED, 3)
    assert tr.flow_run_id == run.id


@pytest.mark.usefixtures("backend")
def test_an_exception_propagates_with_its_own_type_and_fails_the_run(
    default_store: Store,
) -> None:
    @task(retries=1)
    def broken() -> None:
        raise Boom("bad input")

    with pytest.raises(Boom, match="bad input"):
        broken()
    run, (tr,) = only_run(default_store, "broken")
    assert (run.state, tr.state, tr.attempts) == (StateType.FAILED, StateType.FAILED, 2)
    assert run.error is not None and "Boom" in run.error.type


def test_return_state_gives_the_task_runs_state(default_store: Store) -> None:
    @task
    def ok() -> int:
        return 7

    @task
    def bad() -> None:
        raise Boom("nope")

    done = ok(return_state=True)
    assert isinstance(done, State) and done.type is StateType.COMPLETED and done.result() == 7
    failed = bad(return_state=True)
    assert failed.type is StateType.FAILED
    assert isinstance(failed.result(raise_on_failure=False), Boom)
    (tr,) = only_run(default_store, "ok")[1]
    assert done.run_id == tr.id


def test_a_timeout_fails_the_call_with_the_timeout_error(default_store: Store) -> None:
    release = threading.Event()

    @task(timeout_seconds=0.2)
    def slow() -> None:
        release.wait(30)

    try:
        with pytest.raises(TaskTimeoutError):
            slow()
    finally:
        release.set()
    run, (tr,) = only_run(default_store, "slow")
    assert (run.state, tr.state) == (StateType.FAILED, StateType.FAILED)


@pytest.mark.usefixtures("backend")
def test_a_cached_call_outside_a_flow_returns_the_stored_result_without_running(
    default_store: Store,
) -> None:
    ran: list[int] = []

    @task(cache_policy=INPUTS, persist_result=True)
    def expensive(x: int) -> int:
        ran.append(x)
        return x * 10

    assert expensive(4) == 40
    assert expensive(4) == 40
    assert expensive(5) == 50
    assert ran == [4, 5]
    runs = runs_of(default_store, "expensive")
    assert len(runs) == 3
    cached = [t.cached for r in runs for t in default_store.list_task_runs(r.id)]
    assert sorted(cached) == [False, False, True]


def test_default_policy_keys_on_each_standalone_run_as_prefect_does(default_store: Store) -> None:
    # Prefect: DEFAULT keys on the flow run, or for a task run outside a flow on
    # that task run, so separate standalone calls do not share entries.
    ran: list[int] = []

    @task(cache_policy=DEFAULT)
    def keyed(x: int) -> int:
        ran.append(x)
        return x

    keyed(1)
    keyed(1)
    assert ran == [1, 1]
    records = [
        t for r in runs_of(default_store, "keyed") for t in default_store.list_task_runs(r.id)
    ]
    assert [t.cached for t in records] == [False, False]
    assert len({t.cache_key for t in records}) == 2 and None not in {t.cache_key for t in records}


def test_async_task_outside_a_flow_returns_a_coroutine_and_is_tracked(
    default_store: Store,
) -> None:
    tries: list[int] = []

    @task(retries=1)
    async def double(x: int) -> int:
        tries.append(x)
        if len(tries) == 1:
            raise Boom("first")
        await asyncio.sleep(0)
        return x * 2

    pending = double(3)
    assert asyncio.iscoroutine(pending)
    assert runs_of(default_store, "double") == []  # nothing runs until awaited
    assert asyncio.run(pending) == 6
    run, (tr,) = only_run(default_store, "double")
    assert (run.state, tr.attempts) == (StateType.COMPLETED, 2)

    @task
    async def fails() -> None:
        raise Boom("async")

    with pytest.raises(Boom):
        asyncio.run(fails())
    state = asyncio.run(fails(return_state=True))
    assert state.type is StateType.FAILED


def test_a_sync_task_called_from_async_code_outside_a_flow(default_store: Store) -> None:
    @task
    def inc(x: int) -> int:
        return x + 1

    async def main() -> int:
        return inc(1)

    assert asyncio.run(main()) == 2
    assert only_run(default_store, "inc")[0].state is StateType.COMPLETED


@pytest.mark.usefixtures("backend")
def test_submit_and_map_outside_a_flow_return_futures(default_store: Store) -> None:
    @task
    def square(x: int) -> int:
        return x * x

    future = square.submit(3)
    assert future.result() == 9
    futures = square.map([1, 2, 3])
    assert futures.result() == [1, 4, 9]
    states = square.map([4, 5], return_state=True)
    assert [s.result() for s in states] == [16, 25]
    wait_until(lambda: finished(default_store, "square", 3), what="three finished runs")
    keys = sorted(
        sorted(t.call_key for t in default_store.list_task_runs(r.id))
        for r in runs_of(default_store, "square")
    )
    assert keys == [
        ["square[0]"],
        ["square[0]", "square[1]"],
        ["square[0]", "square[1]", "square[2]"],
    ]
    assert all(STANDALONE_TAG in r.tags for r in runs_of(default_store, "square"))


def test_a_failed_submitted_task_outside_a_flow_raises_from_its_future(
    default_store: Store,
) -> None:
    @task
    def bad(x: int) -> int:
        raise Boom(f"bad {x}")

    future = bad.submit(1)
    with pytest.raises(Boom, match="bad 1"):
        future.result()
    wait_until(lambda: finished(default_store, "bad"), what="the run to finish")
    run, (tr,) = only_run(default_store, "bad")
    assert (run.state, tr.state) == (StateType.FAILED, StateType.FAILED)


def test_a_task_called_inside_a_standalone_task_is_a_tracked_child(
    default_store: Store,
) -> None:
    @task
    def inner(x: int) -> int:
        return x + 1

    @task
    def outer(x: int) -> int:
        return inner(x) * 2

    assert outer(1) == 4
    _, trs = only_run(default_store, "outer")
    assert sorted(t.call_key for t in trs) == ["outer[0]", "outer[0]/inner[0]"]
    assert runs_of(default_store, "inner") == []


def test_tasks_inside_flows_are_unchanged_and_fn_stays_a_plain_call(
    default_store: Store,
) -> None:
    @task
    def add(a: int, b: int) -> int:
        return a + b

    @flow
    def pipeline() -> int:
        return add(1, 2)

    assert pipeline() == 3
    assert add.fn(2, 2) == 4  # the untracked escape hatch
    (run,) = default_store.list_flow_runs()
    assert run.flow_name == "pipeline" and STANDALONE_TAG not in run.tags


def test_hooks_and_tags_apply_outside_a_flow(default_store: Store) -> None:
    seen: list[str] = []

    @task(tags=["etl"], on_completion=[lambda t, tr, s: seen.append(f"done {s.result()}")])
    def tagged() -> int:
        return 5

    assert tagged() == 5
    assert seen == ["done 5"]
    (tr,) = only_run(default_store, "tagged")[1]
    assert "etl" in tr.tags


def test_the_standalone_run_shows_in_legato_runs_and_show(default_store: Store) -> None:
    @task
    def visible(x: int) -> int:
        return x

    visible(1)
    (run,) = runs_of(default_store, "visible")
    env = dict(os.environ)
    listed = subprocess.run(
        [sys.executable, "-m", "legato", "runs", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert run.id in listed.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "legato", "show", run.id, "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    data = json.loads(shown.stdout)
    assert data["state"] == "completed" and STANDALONE_TAG in data["tags"]
    assert "visible[0]" in shown.stdout


def test_a_standalone_run_is_not_resumed_with_a_flow_of_the_tasks_name(
    default_store: Store,
) -> None:
    import legato
    from legato.errors import TargetNotFoundError

    @task(name="same-name")
    def broken_task() -> None:
        raise Boom("once")

    @flow(name="same-name")
    def impostor() -> str:  # registered under the task's name: must not be picked up
        return "wrong code"

    with pytest.raises(Boom):
        broken_task()
    [run] = [r for r in runs_of(default_store, "same-name") if STANDALONE_TAG in r.tags]
    with pytest.raises(TargetNotFoundError, match="called outside any flow"):
        legato.resume_flow_run(run.id)
    assert default_store.get_flow_run(run.id).state is StateType.FAILED  # type: ignore[union-attr]
