"""Transactions as Prefect 3 documents them: values, states, on_commit, commit modes."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from _engine_support import Journal, record

from legato import State, flow, task
from legato.errors import ConfigurationError
from legato.records import TaskRun
from legato.store.base import Store
from legato.transactions import (
    CommitMode,
    IsolationLevel,
    Transaction,
    get_transaction,
    transaction,
)


def current() -> Transaction:
    txn = get_transaction()
    assert txn is not None
    return txn


@task
def write_file(name: str) -> str:
    current().set("path", f"/tmp/{name}")  # a task shares a value with its hooks
    record(f"write {name}")
    return name


@write_file.on_commit
def publish(txn: Transaction) -> None:  # Prefect's form: the hook gets the transaction
    record(f"publish {txn.get('path')}")


@write_file.on_rollback
def delete(txn: Transaction) -> None:
    record(f"delete {txn.get('path')}")


def confirm(t: Any, task_run: TaskRun, state: State) -> None:  # legato's form
    record(f"confirm {t.name} {task_run.call_key} {state.result()}")


@task(on_commit=[confirm])
def reserve(item: str) -> str:
    record(f"reserve {item}")
    return f"reservation:{item}"


@task
def check(ok: bool) -> None:
    record("check")
    if not ok:
        raise ValueError("not enough data")


def logs(store: Store) -> list[tuple[int, str]]:
    run = store.list_flow_runs()[0]
    return [(r.level, r.message) for r in store.read_logs(run.id)]


def test_set_and_get_are_shared_by_code_and_tasks(default_store: Store) -> None:
    @task
    def read(name: str) -> Any:
        return current().get(name)

    @flow
    def f() -> list[Any]:
        with transaction() as txn:
            txn.set("batch", [1, 2])
            write_file("a")
            seen = [read("batch"), read("path"), read.submit("path").result()]
            got = txn.get("batch")
            got.append(3)  # a copy: the stored value changes only through set()
            return [*seen, txn.get("batch"), txn.get("missing"), txn.get("missing", 7)]

    assert f() == [[1, 2], "/tmp/a", "/tmp/a", [1, 2], None, 7]


def test_a_nested_transaction_reads_its_parents_values(default_store: Store) -> None:
    @flow
    def f() -> list[Any]:
        with transaction() as outer:
            outer.set("who", "outer")
            outer.set("level", 1)
            with transaction() as inner:
                inner.set("level", 2)
                seen = [inner.get("who"), inner.get("level"), current() is inner]
            return [*seen, outer.get("level"), current() is outer]

    assert f() == ["outer", 2, True, 1, True]


def test_get_transaction_is_none_outside_a_block(default_store: Store) -> None:
    @task
    def probe() -> bool:
        return get_transaction() is None

    @flow
    def f() -> list[bool]:
        return [get_transaction() is None, probe()]

    assert f() == [True, True]
    assert get_transaction() is None


def test_outermost_commit_runs_commit_hooks_in_completion_order(
    default_store: Store, journal: Journal
) -> None:
    states: list[tuple[str, bool, bool, bool]] = []

    @flow
    def f() -> None:
        with transaction() as outer:
            reserve("a")
            with transaction() as inner:
                write_file("b")
                reserve("c")
            record("inner exited")
            states.append(("inner", inner.is_active(), inner.is_committed(), inner.is_staged()))
            states.append(("outer", outer.is_active(), outer.is_committed(), False))
        states.append(("outer", outer.is_active(), outer.is_committed(), False))
        states.append(("inner", inner.is_active(), inner.is_committed(), inner.is_staged()))

    f()
    assert journal.lines() == [
        "reserve a",
        "write b",
        "reserve c",
        "inner exited",  # a nested block does not commit: the outermost one does
        "confirm reserve reserve[0] reservation:a",
        "publish /tmp/b",
        "confirm reserve reserve[1] reservation:c",
    ]
    assert states == [
        ("inner", False, False, True),
        ("outer", True, False, False),
        ("outer", False, True, False),
        ("inner", False, True, False),
    ]


def test_failure_rolls_back_with_prefect_style_hooks_and_does_not_commit(
    default_store: Store, journal: Journal
) -> None:
    seen: list[Transaction] = []

    @flow
    def pipeline() -> None:
        with transaction() as txn:
            seen.append(txn)
            write_file("side-effect.txt")
            reserve("x")
            check(False)

    with pytest.raises(ValueError, match="not enough data"):
        pipeline()
    assert journal.lines() == [
        "write side-effect.txt",
        "reserve x",
        "check",
        "delete /tmp/side-effect.txt",
    ]
    assert seen[0].is_rolled_back() and not seen[0].is_committed()
    run = default_store.list_flow_runs()[0]
    flags = {t.call_key: t.rolled_back for t in default_store.list_task_runs(run.id)}
    # reserve joined for its commit hook only: it has nothing to compensate.
    assert flags == {"write_file[0]": True, "reserve[0]": False, "check[0]": False}


def test_a_failing_commit_hook_is_logged_and_the_others_run(
    default_store: Store, journal: Journal
) -> None:
    def broken(txn: Transaction) -> None:
        raise OSError("queue down")

    fragile = reserve.with_options(name="fragile", on_commit=[broken, confirm])

    def wrong_arity(a: Any, b: Any) -> None:
        raise AssertionError("never called")

    odd = reserve.with_options(name="odd", on_commit=[wrong_arity])

    @flow
    def f() -> str:
        with transaction():
            fragile("y")
            odd("z")
            reserve("w")
        return "done"

    assert f() == "done"
    assert journal.lines()[-2:] == [
        "confirm fragile fragile[0] reservation:y",
        "confirm reserve reserve[0] reservation:w",
    ]
    errors = [m for level, m in logs(default_store) if level == logging.ERROR]
    assert any("on_commit hook of task fragile[0]" in m and "queue down" in m for m in errors)
    assert any("odd[0]" in m and "must take one argument" in m for m in errors)


def test_eager_commits_each_task_as_it_completes(default_store: Store, journal: Journal) -> None:
    @flow
    def f() -> None:
        with transaction(commit_mode=CommitMode.EAGER) as txn:
            write_file("e")
            with transaction() as inner:  # inherits EAGER
                assert inner.commit_mode is CommitMode.EAGER
                reserve("f")
            check(False)
        assert txn  # not reached

    with pytest.raises(ValueError):
        f()
    assert journal.lines() == [
        "write e",
        "publish /tmp/e",
        "reserve f",
        "confirm reserve reserve[0] reservation:f",
        "check",  # committed tasks are not compensated: no "delete"
    ]
    run = default_store.list_flow_runs()[0]
    assert not any(t.rolled_back for t in default_store.list_task_runs(run.id))


def test_off_never_commits_and_an_outermost_off_block_rolls_back(
    default_store: Store, journal: Journal
) -> None:
    states: list[bool] = []

    @flow
    def f() -> str:
        with transaction(commit_mode=CommitMode.OFF) as txn:
            write_file("o")
        states.extend([txn.is_committed(), txn.is_rolled_back()])
        return "returned"

    assert f() == "returned"
    assert journal.lines() == ["write o", "delete /tmp/o"]
    assert states == [False, True]


def test_a_nested_off_block_is_committed_by_its_parent(
    default_store: Store, journal: Journal
) -> None:
    @flow
    def f() -> None:
        with transaction():
            with transaction(commit_mode=CommitMode.OFF):
                write_file("n")
            record("nested exited")

    f()
    assert journal.lines() == ["write n", "nested exited", "publish /tmp/n"]


def test_isolation_level_is_accepted_and_inherited(default_store: Store) -> None:
    @flow
    def f() -> list[IsolationLevel]:
        with transaction() as plain:
            pass
        with (
            transaction(isolation_level=IsolationLevel.SERIALIZABLE) as outer,
            transaction() as inner,
        ):
            pass
        return [plain.isolation_level, outer.isolation_level, inner.isolation_level]

    assert f() == [
        IsolationLevel.READ_COMMITTED,
        IsolationLevel.SERIALIZABLE,
        IsolationLevel.SERIALIZABLE,
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"commit_mode": "eager"}, "takes a legato.transactions.CommitMode"),
        ({"isolation_level": "SERIALIZABLE"}, "takes a legato.transactions.IsolationLevel"),
    ],
)
def test_unsupported_arguments_are_refused_with_one_line(
    default_store: Store, kwargs: dict[str, Any], message: str
) -> None:
    @flow
    def f() -> None:
        with transaction(**kwargs):
            pass

    with pytest.raises(ConfigurationError, match=message):
        f()


def test_on_commit_option_survives_with_options(default_store: Store) -> None:
    copy = write_file.with_options(name="copy")
    assert list(copy.on_commit) == [publish]
    assert list(reserve.with_options(on_commit=[]).on_commit) == []
