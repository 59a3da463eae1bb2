"""Futures: submit, map, unmapped, wait, as_completed, dependencies between task runs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import legato
from legato import LegatoFuture, StateType, flow, task, unmapped
from legato.errors import ConfigurationError, UpstreamTaskFailedError
from legato.records import Dependency, FlowRun, TaskRun
from legato.store.base import Store


def only_run(store: Store) -> FlowRun:
    runs = store.list_flow_runs(limit=10)
    assert len(runs) == 1, runs
    return runs[0]


def by_key(store: Store) -> dict[str, TaskRun]:
    return {t.call_key: t for t in store.list_task_runs(only_run(store).id)}


@task
def double(x: int) -> int:
    return 2 * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def fail(message: str) -> int:
    raise ValueError(message)


# --- submit ----------------------------------------------------------------------------


def test_submit_returns_a_future(default_store: Store) -> None:
    release = threading.Event()

    @task
    def gated(x: int) -> int:
        assert release.wait(10)
        return x + 1

    seen: dict[str, Any] = {}

    @flow
    def f() -> int:
        fut = gated.submit(1)
        assert isinstance(fut, LegatoFuture)
        seen["done_before"] = fut.done()
        seen["state_before"] = fut.state.type
        with pytest.raises(TimeoutError, match=r"gated\[0\] did not finish within 0.05s"):
            fut.result(timeout=0.05)
        release.set()
        fut.wait()
        seen["done_after"] = fut.done()
        seen["state_after"] = fut.state.type
        seen["key"] = (fut.call_key, fut.task_name)
        return fut.result()

    assert f() == 2
    assert seen == {
        "done_before": False,
        "state_before": StateType.RUNNING,
        "done_after": True,
        "state_after": StateType.COMPLETED,
        "key": ("gated[0]", "gated"),
    }
    (tr,) = by_key(default_store).values()
    assert tr.state is StateType.COMPLETED


def test_failed_future_state_and_result(default_store: Store) -> None:
    @flow
    def f() -> str:
        fut = fail.submit("broken")
        fut.wait()
        assert fut.done()
        assert fut.state.type is StateType.FAILED
        assert "broken" in (fut.state.message or "")
        assert isinstance(fut.result(raise_on_failure=False), ValueError)
        with pytest.raises(ValueError, match="broken"):
            fut.result()
        return "handled"

    assert f() == "handled"
    assert by_key(default_store)["fail[0]"].state is StateType.FAILED
    # A failed future that the flow handled does not fail the flow.
    assert only_run(default_store).state is StateType.COMPLETED


def test_submitted_tasks_run_concurrently() -> None:
    barrier = threading.Barrier(4, timeout=10)

    @task
    def meet(i: int) -> int:
        barrier.wait()  # only passes if all four run at the same time
        return i

    @flow
    def f() -> list[int]:
        return [fut.result() for fut in [meet.submit(i) for i in range(4)]]

    assert f() == [0, 1, 2, 3]


def test_flow_waits_for_unawaited_submitted_tasks(default_store: Store) -> None:
    done: list[int] = []

    @task
    def slow(i: int) -> None:
        time.sleep(0.1)
        done.append(i)

    @flow
    def f() -> None:
        slow.submit(1)
        slow.submit(2)

    f()
    assert sorted(done) == [1, 2]
    assert all(t.state is StateType.COMPLETED for t in by_key(default_store).values())


# --- map -------------------------------------------------------------------------------


def test_map_keeps_input_order_and_keys(default_store: Store) -> None:
    @task
    def jittery(x: int) -> int:
        time.sleep(0.01 * (5 - x))  # later items finish first
        return x * 10

    @flow
    def f() -> list[int]:
        futures = jittery.map(range(5))
        assert [fut.call_key for fut in futures] == [f"jittery[{i}]" for i in range(5)]
        return [fut.result() for fut in futures]

    assert f() == [0, 10, 20, 30, 40]
    runs = by_key(default_store)
    assert sorted(runs) == [f"jittery[{i}]" for i in range(5)]
    # Each key ran on its own input.
    for i in range(5):
        stored = default_store.get_task_result(runs[f"jittery[{i}]"].id)
        assert stored is not None
        import pickle

        assert pickle.loads(stored.payload) == i * 10


def test_map_with_unmapped_and_kwargs() -> None:
    @task
    def combine(x: int, scale: int, offsets: list[int], label: str) -> str:
        return f"{label}{x * scale + sum(offsets)}"

    @flow
    def f() -> list[str]:
        futures = combine.map(
            [1, 2, 3],
            scale=unmapped(10),
            offsets=unmapped([1, 1]),  # a list, but passed whole
            label=["a", "b", "c"],  # a mapped keyword
        )
        return [fut.result() for fut in futures]

    assert f() == ["a12", "b22", "c32"]


def test_map_strings_and_dicts_are_passed_whole() -> None:
    @task
    def show(x: int, sep: str, extra: dict[str, int]) -> str:
        return f"{x}{sep}{extra['k']}"

    @flow
    def f() -> list[str]:
        return [fut.result() for fut in show.map([1, 2], "-", {"k": 9})]

    assert f() == ["1-9", "2-9"]


def test_map_over_futures_records_edges(default_store: Store) -> None:
    @flow
    def f() -> list[int]:
        firsts = double.map([1, 2, 3])
        return [fut.result() for fut in add.map(firsts, unmapped(100))]

    assert f() == [102, 104, 106]
    runs = by_key(default_store)
    for i in range(3):
        assert runs[f"add[{i}]"].dependencies == (Dependency(runs[f"double[{i}]"].id, "data", "x"),)


def test_map_with_mismatched_lengths_is_an_error(default_store: Store) -> None:
    @flow
    def f() -> None:
        add.map([1, 2, 3], [1, 2])

    with pytest.raises(ConfigurationError, match=r"different lengths \(0: 3, 1: 2\)"):
        f()


def test_map_needs_an_iterable(default_store: Store) -> None:
    @flow
    def f() -> None:
        add.map(1, unmapped(2))

    with pytest.raises(ConfigurationError, match="at least one iterable"):
        f()


def test_map_over_200_items_all_recorded(default_store: Store) -> None:
    @flow
    def f(n: int) -> int:
        return sum(fut.result() for fut in double.map(range(n)))

    assert f(200) == 2 * sum(range(200))
    runs = by_key(default_store)
    assert len(runs) == 200
    assert set(runs) == {f"double[{i}]" for i in range(200)}
    assert all(t.state is StateType.COMPLETED and t.attempts == 1 for t in runs.values())


def test_empty_map_returns_no_futures() -> None:
    @flow
    def f() -> list[Any]:
        return double.map([])

    assert f() == []


# --- wait / as_completed -----------------------------------------------------------------


def test_wait_returns_done_and_not_done() -> None:
    release = threading.Event()

    @task
    def gated(i: int) -> int:
        if i == 2:
            assert release.wait(10)
        return i

    @flow
    def f() -> tuple[list[int], list[int], list[int]]:
        futures = gated.map([0, 1, 2])
        futures[0].wait()
        futures[1].wait()
        first = legato.wait(futures, timeout=0.1)
        release.set()
        second = legato.wait(futures)
        return (
            sorted(fut.result() for fut in first.done),
            sorted(fut.call_key for fut in first.not_done),  # type: ignore[misc]
            sorted(fut.result() for fut in second.done),
        )

    done, not_done, all_done = f()
    assert done == [0, 1]
    assert not_done == ["gated[2]"]  # type: ignore[comparison-overlap]
    assert all_done == [0, 1, 2]


def test_as_completed_yields_in_finishing_order() -> None:
    # Task n may finish only once as_completed has yielded task n - 1: the order
    # they finish in is fixed, and differs from the order they were submitted in.
    yielded = [threading.Event() for _ in range(3)]

    @task
    def ranked(n: int) -> int:
        if n > 0:
            assert yielded[n - 1].wait(10), f"task {n - 1} was never yielded"
        return n

    @flow
    def f() -> list[int]:
        finished: list[int] = []
        for fut in legato.as_completed(ranked.map([2, 0, 1])):
            finished.append(fut.result())
            yielded[finished[-1]].set()
        return finished

    assert f() == [0, 1, 2]


def test_as_completed_timeout() -> None:
    release = threading.Event()

    @task
    def gated() -> None:
        assert release.wait(10)

    @flow
    def f() -> None:
        future = gated.submit()
        with pytest.raises(TimeoutError):
            list(legato.as_completed([future], timeout=0.05))
        release.set()

    f()


# --- dependencies ---------------------------------------------------------------------


def test_futures_passed_as_arguments_are_resolved_and_recorded(default_store: Store) -> None:
    @task
    def total(values: list[int], bonus: int) -> int:
        return sum(values) + bonus

    @flow
    def f() -> int:
        a = double.submit(1)
        b = double.submit(2)
        c = double.submit(3)
        return total.submit([a, b], bonus=c).result()

    assert f() == 2 + 4 + 6
    runs = by_key(default_store)
    deps = set(runs["total[0]"].dependencies)
    assert deps == {
        Dependency(runs["double[0]"].id, "data", "values"),
        Dependency(runs["double[1]"].id, "data", "values"),
        Dependency(runs["double[2]"].id, "data", "bonus"),
    }
    assert runs["double[0]"].dependencies == ()


def test_future_passed_to_a_direct_call_is_resolved(default_store: Store) -> None:
    @flow
    def f() -> int:
        return add(double.submit(5), 1)

    assert f() == 11
    runs = by_key(default_store)
    assert runs["add[0]"].dependencies == (Dependency(runs["double[0]"].id, "data", "x"),)


def test_wait_for_orders_execution_and_records_edges(default_store: Store) -> None:
    events: list[str] = []

    @task
    def first() -> None:
        time.sleep(0.2)
        events.append("first done")

    @task
    def second() -> None:
        events.append("second started")

    @flow
    def f() -> None:
        a = first.submit()
        b = second.submit(wait_for=[a])
        b.result()
        second(wait_for=[b])  # a direct call can wait too

    f()
    assert events == ["first done", "second started", "second started"]
    runs = by_key(default_store)
    assert runs["second[0]"].dependencies == (Dependency(runs["first[0]"].id, "wait_for"),)
    assert runs["second[1]"].dependencies == (Dependency(runs["second[0]"].id, "wait_for"),)


def test_direct_call_result_passed_on_records_data_edge(default_store: Store) -> None:
    @task
    def rows() -> list[int]:
        return [1, 2, 3]

    @task
    def count(items: list[int]) -> int:
        return len(items)

    @task
    def after() -> None:
        pass

    @flow
    def f() -> int:
        r = rows()
        after(wait_for=[r])
        return count(r) + count([9])

    assert f() == 4
    runs = by_key(default_store)
    assert runs["count[0]"].dependencies == (Dependency(runs["rows[0]"].id, "data", "items"),)
    assert runs["count[1]"].dependencies == ()  # an equal list is not the same value
    assert runs["after[0]"].dependencies == (Dependency(runs["rows[0]"].id, "wait_for"),)


def test_upstream_failure_fails_downstream_without_running(default_store: Store) -> None:
    ran: list[int] = []

    @task
    def downstream(x: int) -> None:
        ran.append(x)

    @flow
    def f() -> None:
        bad = fail.submit("upstream broke")
        waiting = downstream.submit(1, wait_for=[bad])
        data = downstream.submit(bad)
        for fut in (waiting, data):
            with pytest.raises(UpstreamTaskFailedError, match=r"upstream task fail\[0\] is failed"):
                fut.result()

    f()
    assert ran == []
    runs = by_key(default_store)
    for key in ("downstream[0]", "downstream[1]"):
        assert runs[key].state is StateType.FAILED
        assert runs[key].attempts == 0  # never ran
        assert runs[key].error is not None
        assert runs[key].error.type == "UpstreamTaskFailedError"


def test_upstream_failure_is_not_retried(default_store: Store) -> None:
    ran: list[int] = []

    @task(retries=3, retry_delay_seconds=1)
    def downstream(x: int) -> None:
        ran.append(x)

    @flow
    def f() -> None:
        downstream(fail.submit("x"))

    started = time.monotonic()
    with pytest.raises(UpstreamTaskFailedError):
        f()
    assert time.monotonic() - started < 1
    assert ran == []


def test_returned_futures_are_resolved(default_store: Store) -> None:
    @flow
    def f() -> dict[str, Any]:
        return {
            "one": double.submit(1),
            "many": double.map([2, 3]),
            "tuple": (double.submit(4),),
        }

    assert f() == {"one": 2, "many": [4, 6], "tuple": (8,)}


def test_returned_single_future_is_resolved() -> None:
    @flow
    def f() -> Any:
        return double.submit(21)

    assert f() == 42


def test_async_flow_can_submit(default_store: Store) -> None:
    import asyncio

    @task
    async def adouble(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    @flow
    async def f() -> list[int]:
        return [fut.result() for fut in adouble.map([1, 2, 3])]

    assert asyncio.run(f()) == [2, 4, 6]
    assert sorted(by_key(default_store)) == ["adouble[0]", "adouble[1]", "adouble[2]"]


def test_map_returns_a_list_with_prefects_result_and_wait() -> None:
    from legato import LegatoFutureList, flow, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def mapped() -> list[int]:
        futures = double.map([1, 2, 3])
        assert isinstance(futures, LegatoFutureList) and isinstance(futures, list)
        futures.wait()
        assert all(f.done() for f in futures)
        return futures.result()

    assert mapped() == [2, 4, 6]


def test_a_mapped_list_passed_to_a_task_is_resolved_with_its_edges() -> None:
    from legato import flow, task
    from legato.client import Client

    @task
    def double(x: int) -> int:
        return 2 * x

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @flow
    def fan_in() -> int:
        return total(double.map([1, 2, 3]))

    state = fan_in(return_state=True)
    assert state.result() == 12
    runs = {tr.call_key: tr for tr in Client().task_runs(state.run_id or "")}
    assert len(runs["total[0]"].dependencies) == 3
