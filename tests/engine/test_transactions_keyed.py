"""Keyed transactions: a block whose key committed before answers from its record."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _engine_support import Journal, record

import legato
from _waiting import wait_until
from legato import flow, task
from legato.errors import InvalidTransactionKeyError
from legato.prefect_shim import install
from legato.store.base import Store
from legato.transactions import CommitMode, IsolationLevel, transaction


@task
def write(name: str) -> str:
    record(f"write {name}")
    return f"wrote {name}"


@task
def stamp(n: int) -> dict[str, int]:
    record(f"stamp {n}")
    return {"n": n}


@flow
def load(key: str, fail: bool = False) -> dict[str, Any]:
    with transaction(key=key) as txn:
        committed = txn.is_committed()
        if not committed:
            txn.set("batch", [1, 2, 3])
        first = write("a")
        future = stamp.submit(2)
        second = stamp(1)
        if fail:
            raise ValueError("the load failed")
        out = {
            "committed": committed,
            "results": [first, future.result(), second],
            "batch": txn.get("batch"),
        }
    out["after"] = txn.is_committed()
    return out


def cached_flags(store: Store) -> list[tuple[str, bool]]:
    run = store.list_flow_runs(limit=1)[0]
    return sorted((t.call_key, t.cached) for t in store.list_task_runs(run.id))


def test_a_second_run_with_the_key_answers_from_the_record(
    default_store: Store, journal: Journal
) -> None:
    first = load("day-1")
    assert first == {
        "committed": False,
        "results": ["wrote a", {"n": 2}, {"n": 1}],
        "batch": [1, 2, 3],
        "after": True,
    }
    assert journal.counts() == {"write a": 1, "stamp 2": 1, "stamp 1": 1}
    assert cached_flags(default_store) == [
        ("stamp[0]", False),
        ("stamp[1]", False),
        ("write[0]", False),
    ]

    second = load("day-1")
    assert second == {**first, "committed": True}  # values set in the first run too
    assert journal.counts() == {"write a": 1, "stamp 2": 1, "stamp 1": 1}  # no body ran
    # recorded as cached task runs, so `legato show` says where the results came from
    assert cached_flags(default_store) == [
        ("stamp[0]", True),
        ("stamp[1]", True),
        ("write[0]", True),
    ]
    stored = default_store.get_transaction_record("day-1")
    assert stored is not None and stored.flow_run_id != default_store.list_flow_runs()[0].id


def test_the_nth_call_of_a_task_gets_the_nth_recorded_result(
    default_store: Store, journal: Journal
) -> None:
    @flow
    def f(ns: list[int]) -> list[Any]:
        with transaction(key="ordered"):
            return [stamp(n) for n in ns]

    assert f([5, 6]) == [{"n": 5}, {"n": 6}]
    # called with other arguments, and once more: the third call has nothing recorded
    assert f([7, 8, 9]) == [{"n": 5}, {"n": 6}, {"n": 9}]
    assert journal.counts() == {"stamp 5": 1, "stamp 6": 1, "stamp 9": 1}


def test_a_failed_block_records_nothing_and_the_next_run_runs_it(
    default_store: Store, journal: Journal
) -> None:
    with pytest.raises(ValueError, match="the load failed"):
        load("day-2", fail=True)
    assert default_store.get_transaction_record("day-2") is None
    assert load("day-2")["committed"] is False
    assert journal.counts() == {"write a": 2, "stamp 2": 2, "stamp 1": 2}
    assert load("day-2")["committed"] is True
    assert journal.count("write a") == 2


def test_the_record_is_written_when_the_block_commits_not_when_the_flow_ends(
    default_store: Store, journal: Journal
) -> None:
    @flow
    def f(fail_after: bool) -> bool:
        with transaction(key="early") as txn:
            seen = txn.is_committed()
            write("x")
        if fail_after:
            raise RuntimeError("later step failed")
        return seen

    with pytest.raises(RuntimeError, match="later step failed"):
        f(True)
    assert f(False) is True
    assert journal.count("write x") == 1


@task
def check(flag: str) -> None:
    if Path(flag).exists():
        raise ConnectionError("the check found a problem")


def test_a_resumed_run_replays_its_tasks_then_commits_the_key(
    default_store: Store, journal: Journal, tmp_path: Path
) -> None:
    flag = tmp_path / "problem"

    @flow
    def f(flag: str) -> bool:
        with transaction(key="resumed") as txn:
            seen = txn.is_committed()
            write("r")
            check(flag)
        return seen

    flag.touch()
    with pytest.raises(ConnectionError):
        f(str(flag))
    assert default_store.get_transaction_record("resumed") is None
    run = default_store.list_flow_runs(limit=1)[0]
    flag.unlink()
    assert legato.resume_flow_run(run.id) is False  # replays write, runs check, commits
    assert journal.count("write r") == 1
    stored = default_store.get_transaction_record("resumed")
    assert stored is not None and stored.flow_run_id == run.id
    assert f(str(flag)) is True
    assert journal.count("write r") == 1


def test_different_keys_are_independent(default_store: Store, journal: Journal) -> None:
    load("k-1")
    assert load("k-2")["committed"] is False
    assert load("k-1")["committed"] is True
    assert journal.count("write a") == 2


def test_commit_mode_off_records_nothing_and_eager_records_at_exit(
    default_store: Store, journal: Journal
) -> None:
    @flow
    def f(mode: CommitMode) -> bool:
        with transaction(key=f"mode-{mode.value}", commit_mode=mode) as txn:
            write(mode.value)
            return txn.is_committed()

    assert [f(CommitMode.OFF), f(CommitMode.OFF)] == [False, False]
    assert [f(CommitMode.EAGER), f(CommitMode.EAGER)] == [False, True]
    assert journal.counts() == {"write OFF": 2, "write EAGER": 1}


def test_a_nested_keyed_block_commits_with_its_outer_block(
    default_store: Store, journal: Journal
) -> None:
    @flow
    def f(outer_key: str) -> list[bool]:
        with transaction(key=outer_key) as outer, transaction(key="inner") as inner:
            write("inner")
            seen = [outer.is_committed(), inner.is_committed()]
        return seen

    assert f("outer-1") == [False, False]
    assert default_store.get_transaction_record("inner") is not None
    # a new outer key: the inner block's record answers its call
    assert f("outer-2") == [False, True]
    assert f("outer-2") == [True, True]
    assert journal.count("write inner") == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must be a non-empty string"),
        ("   ", "must be a non-empty string"),
        (7, "must be a non-empty string"),
        ("k" * 513, "513 characters long, more than 512"),
    ],
)
def test_a_bad_key_is_refused(
    default_store: Store, journal: Journal, key: Any, message: str
) -> None:
    @flow
    def f() -> None:
        with transaction(key=key):
            write("never")

    with pytest.raises(InvalidTransactionKeyError, match=message):
        f()
    assert journal.count("write never") == 0


def test_deleting_the_record_makes_the_block_run_again(
    default_store: Store, journal: Journal
) -> None:
    load("redo")
    assert default_store.delete_transaction_record("redo")
    assert load("redo")["committed"] is False
    assert journal.count("write a") == 2


@task
def held(gate: str) -> str:
    record("body")
    wait_until(Path(gate).exists, what="the test to open the gate")
    return "done"


@flow
def shared(gate: str, level: IsolationLevel) -> bool:
    record("entering")
    with transaction(key="shared", isolation_level=level) as txn:
        committed = txn.is_committed()
        held(gate)
    return committed


def two_at_once(gate: Path, level: IsolationLevel, journal: Journal) -> list[bool]:
    """Run `shared` twice at once; the gate opens once both have reached the block."""
    results: list[bool] = []
    runners = [
        threading.Thread(target=lambda: results.append(shared(str(gate), level))) for _ in range(2)
    ]
    runners[0].start()
    wait_until(lambda: journal.count("body") == 1, what="the first run to start the body")
    runners[1].start()
    wait_until(lambda: journal.count("entering") == 2, what="the second run to reach the block")
    gate.touch()
    for runner in runners:
        runner.join(30)
    return sorted(results)


def test_serializable_runs_the_block_once_among_concurrent_runs(
    default_store: Store, journal: Journal, tmp_path: Path
) -> None:
    assert two_at_once(tmp_path / "gate", IsolationLevel.SERIALIZABLE, journal) == [False, True]
    assert journal.count("body") == 1
    lease = default_store.get_lease("transaction:shared")
    assert lease is None or lease.expires_at <= default_store.clock()  # released


def test_read_committed_lets_concurrent_runs_both_run_the_block(
    default_store: Store, journal: Journal, tmp_path: Path
) -> None:
    assert two_at_once(tmp_path / "gate", IsolationLevel.READ_COMMITTED, journal) == [False, False]
    assert journal.count("body") == 2


def test_a_claim_left_by_a_run_that_ended_is_taken_over(
    default_store: Store, journal: Journal, tmp_path: Path
) -> None:
    @flow
    def crashed() -> None:
        raise RuntimeError("died")

    with pytest.raises(RuntimeError):
        crashed()
    dead = default_store.list_flow_runs(limit=1)[0].id
    now = default_store.clock()
    assert default_store.acquire_lease("transaction:shared", dead, now=now, ttl_seconds=3600)
    (tmp_path / "gate").touch()
    results: list[bool] = []
    runner = threading.Thread(
        target=lambda: results.append(shared(str(tmp_path / "gate"), IsolationLevel.SERIALIZABLE))
    )
    runner.start()
    runner.join(30)
    assert results == [False]
    assert journal.count("body") == 1


@pytest.fixture
def shim() -> Iterator[None]:
    saved = list(sys.meta_path)
    install()
    try:
        yield
    finally:
        sys.meta_path[:] = saved
        for name in [n for n in sys.modules if n == "prefect" or n.startswith("prefect.")]:
            del sys.modules[name]


@pytest.mark.usefixtures("shim")
def test_the_prefect_module_name_works(default_store: Store, journal: Journal) -> None:
    from prefect import flow as pflow
    from prefect.transactions import transaction as ptransaction

    @pflow
    def f() -> list[Any]:
        with ptransaction(key="shimmed") as txn:
            if txn.is_committed():
                return ["skipped", txn.get("v")]
            txn.set("v", write("p"))
            return ["ran", txn.get("v")]

    assert f() == ["ran", "wrote p"]
    assert f() == ["skipped", "wrote p"]
    assert journal.count("write p") == 1
