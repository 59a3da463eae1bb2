"""Replay under concurrency: call keys that do not depend on timing.

Each flow runs once with its branches finishing in one order and fails at the
end; the resume replays every completed call (nothing runs twice) with the
branches finishing in another order, and must return the same results. Before
branch scopes, keys followed the order calls happened, so the resume handed
one branch's recorded results to the other.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from _engine_support import Journal, record

import legato
from legato import flow, task
from legato.records import FlowRun
from legato.store.base import Store


def marker() -> Path:
    return Path(os.environ["LEGATO_TEST_JOURNAL"]).with_name("broken")


def first_run() -> bool:
    return marker().exists()


def latest_run(store: Store, flow_name: str) -> FlowRun:
    runs = store.list_flow_runs(flow_name=flow_name, limit=1)
    assert runs, f"no run of {flow_name}"
    return runs[0]


@task
async def fetch(i: int) -> int:
    record(f"fetch {i}")
    # The first run finishes the branches in reverse order; the resume (replayed
    # fetches return at once) in argument order.
    if first_run():
        await asyncio.sleep(0.05 * (3 - i))
    return i * 10


@task
async def process(value: int) -> str:
    record(f"process {value}")
    return f"processed {value}"


async def branch(i: int) -> str:
    return await process(await fetch(i))


def fail_on_first_run() -> None:
    if first_run():
        raise RuntimeError("broken on purpose; the test removes the marker, then resumes")


@flow
async def gathered() -> list[str]:
    out = await asyncio.gather(branch(1), branch(2))
    fail_on_first_run()
    return list(out)


@flow
async def grouped() -> list[str]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(branch(i)) for i in (1, 2)]
    fail_on_first_run()
    return [t.result() for t in tasks]


@flow
async def completed_as_they_come() -> list[str]:
    out = [await done for done in asyncio.as_completed([branch(1), branch(2)])]
    fail_on_first_run()
    return sorted(out)


@flow
async def nested_gathers() -> list[list[str]]:
    async def pair(base: int) -> list[str]:
        return list(await asyncio.gather(branch(base), branch(base + 1)))

    out = await asyncio.gather(pair(1), pair(3))
    fail_on_first_run()
    return list(out)


def run_then_resume(store: Store, journal: Journal, the_flow: legato.Flow) -> object:
    marker().touch()
    state = asyncio.run(the_flow(return_state=True))
    assert state.is_failed(), state
    first = journal.counts()
    marker().unlink()
    result = legato.resume_flow_run(latest_run(store, the_flow.name).id)
    # Every call completed in the first run: the resume ran nothing again.
    assert journal.counts() == first
    return result


def test_gather_replays_each_branch_its_own_results(default_store: Store, journal: Journal) -> None:
    assert run_then_resume(default_store, journal, gathered) == ["processed 10", "processed 20"]
    run = latest_run(default_store, "gathered")
    keys = {t.call_key for t in default_store.list_task_runs(run.id)}
    assert keys == {
        "branch[1]/fetch[0]",
        "branch[1]/process[0]",
        "branch[2]/fetch[0]",
        "branch[2]/process[0]",
    }


def test_task_group_replays_each_branch_its_own_results(
    default_store: Store, journal: Journal
) -> None:
    assert run_then_resume(default_store, journal, grouped) == ["processed 10", "processed 20"]


def test_as_completed_replays_each_branch_its_own_results(
    default_store: Store, journal: Journal
) -> None:
    result = run_then_resume(default_store, journal, completed_as_they_come)
    assert result == ["processed 10", "processed 20"]


def test_nested_gathers_replay_each_branch_its_own_results(
    default_store: Store, journal: Journal
) -> None:
    result = run_then_resume(default_store, journal, nested_gathers)
    assert result == [["processed 10", "processed 20"], ["processed 30", "processed 40"]]


@task
def fetch_sync(i: int) -> int:
    record(f"fetch {i}")
    if first_run():
        time.sleep(0.05 * (3 - i))
    return i * 10


@task
def process_sync(value: int) -> str:
    record(f"process {value}")
    return f"processed {value}"


def sync_branch(i: int) -> str:
    return process_sync(fetch_sync(i))


@flow
async def threaded_branches() -> list[str]:
    out = await asyncio.gather(asyncio.to_thread(sync_branch, 1), asyncio.to_thread(sync_branch, 2))
    fail_on_first_run()
    return list(out)


def test_threads_started_from_branches_replay_their_own_results(
    default_store: Store, journal: Journal
) -> None:
    result = run_then_resume(default_store, journal, threaded_branches)
    assert result == ["processed 10", "processed 20"]


@task
def inner(i: int) -> int:
    record(f"inner {i}")
    if first_run():
        time.sleep(0.02 * (3 - i // 10))
    return i + 100


@task
def outer(i: int) -> list[int]:
    return [inner.submit(i * 10 + j).result() for j in range(2)]


@flow
def nested_submits() -> list[list[int]]:
    out = outer.map([1, 2, 3]).result()
    fail_on_first_run()
    return out


def test_nested_submits_in_threads_replay_their_own_results(
    default_store: Store, journal: Journal
) -> None:
    marker().touch()
    state = nested_submits(return_state=True)
    assert state.is_failed()
    first = journal.counts()
    marker().unlink()
    run = latest_run(default_store, "nested_submits")
    assert legato.resume_flow_run(run.id) == [[110, 111], [120, 121], [130, 131]]
    assert journal.counts() == first


def test_sequential_keys_are_unchanged(default_store: Store) -> None:
    """Flows without concurrency keep the keys runs recorded before branch scopes."""

    @flow
    async def plain() -> str:
        return await process(await fetch(0))

    assert asyncio.run(plain()) == "processed 0"
    keys = {t.call_key for t in default_store.list_task_runs(latest_run(default_store, "plain").id)}
    assert keys == {"fetch[0]", "process[0]"}
