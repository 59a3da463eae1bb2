"""Transactions: a failure inside ``with legato.transaction()`` compensates completed tasks."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from _engine_support import Journal, record

import legato
from legato import State, StateType, flow, task
from legato.errors import TaskCallError
from legato.records import TaskRun
from legato.store.base import Store

ROLLBACKS: list[tuple[str, str, StateType, StateType, Any]] = []


def undo(t: Any, task_run: TaskRun, state: State) -> None:
    """Record each compensation with what the hook was given."""
    ROLLBACKS.append((t.name, task_run.call_key, task_run.state, state.type, state.result()))
    record(f"undo {task_run.call_key}")


@pytest.fixture(autouse=True)
def _clear() -> None:
    ROLLBACKS.clear()


@task(on_rollback=[undo])
def reserve(item: str) -> str:
    record(f"reserve {item}")
    return f"reservation:{item}"


@task(on_rollback=[undo])
def charge(amount: int) -> str:
    record(f"charge {amount}")
    return f"payment:{amount}"


@task
def notify() -> None:  # no on_rollback: nothing to compensate
    record("notify")


@task(retries=1)
def ship(fail: bool) -> str:
    record("ship")
    if fail:
        raise RuntimeError("carrier down")
    return "shipped"


@flow
def order(fail: bool) -> str:
    with legato.transaction():
        reserve("book")
        charge(30)
        notify()
        return ship(fail)


def rolled_back(store: Store, run_id: str) -> dict[str, bool]:
    return {t.call_key: t.rolled_back for t in store.list_task_runs(run_id)}


def test_failure_rolls_back_completed_tasks_in_reverse(
    default_store: Store, journal: Journal
) -> None:
    with pytest.raises(RuntimeError, match="carrier down"):
        order(True)
    assert ROLLBACKS == [
        ("charge", "charge[0]", StateType.COMPLETED, StateType.COMPLETED, "payment:30"),
        ("reserve", "reserve[0]", StateType.COMPLETED, StateType.COMPLETED, "reservation:book"),
    ]
    # Compensation ran after the last retry of the failing task, not between attempts.
    assert journal.lines() == [
        "reserve book",
        "charge 30",
        "notify",
        "ship",
        "ship",
        "undo charge[0]",
        "undo reserve[0]",
    ]
    run = default_store.list_flow_runs()[0]
    assert run.state is StateType.FAILED
    assert rolled_back(default_store, run.id) == {
        "reserve[0]": True,
        "charge[0]": True,
        "notify[0]": False,  # no hook, nothing was undone
        "ship[0]": False,
    }
    logs = [r.message for r in default_store.read_logs(run.id)]
    assert "rolled back task charge[0]" in logs


def test_successful_block_runs_no_hooks(default_store: Store, journal: Journal) -> None:
    assert order(False) == "shipped"
    assert ROLLBACKS == []
    run = default_store.list_flow_runs()[0]
    assert not any(rolled_back(default_store, run.id).values())


def test_exception_raised_in_the_block_itself_rolls_back(default_store: Store) -> None:
    @flow
    def f() -> None:
        with legato.transaction():
            reserve("pen")
            raise ValueError("validation failed")

    with pytest.raises(ValueError):
        f()
    assert [r[1] for r in ROLLBACKS] == ["reserve[0]"]


def test_tasks_before_the_block_are_not_rolled_back(default_store: Store) -> None:
    @flow
    def f() -> None:
        reserve("outside")
        with legato.transaction():
            charge(1)
            ship(True)

    with pytest.raises(RuntimeError):
        f()
    assert [r[1] for r in ROLLBACKS] == ["charge[0]"]
    run = default_store.list_flow_runs()[0]
    assert rolled_back(default_store, run.id)["reserve[0]"] is False


def test_caught_failure_after_the_block_keeps_tasks(default_store: Store) -> None:
    @flow
    def f() -> str:
        with legato.transaction():
            reserve("a")
        try:
            ship(True)
        except RuntimeError:
            return "handled outside"
        return "?"

    assert f() == "handled outside"
    assert ROLLBACKS == []


def test_nested_transaction_hands_its_tasks_to_the_outer(default_store: Store) -> None:
    @flow
    def f() -> None:
        with legato.transaction():
            reserve("outer-1")
            with legato.transaction():
                charge(1)
                charge(2)
            reserve("outer-2")
            ship(True)

    with pytest.raises(RuntimeError):
        f()
    assert [r[1] for r in ROLLBACKS] == ["reserve[1]", "charge[1]", "charge[0]", "reserve[0]"]


def test_failing_inner_transaction_rolls_back_only_its_own(default_store: Store) -> None:
    @flow
    def f() -> str:
        with legato.transaction():
            reserve("outer")
            try:
                with legato.transaction():
                    charge(1)
                    ship(True)
            except RuntimeError:
                pass
            return "outer kept"

    assert f() == "outer kept"
    assert [r[1] for r in ROLLBACKS] == ["charge[0]"]
    run = default_store.list_flow_runs()[0]
    assert rolled_back(default_store, run.id) == {
        "reserve[0]": False,
        "charge[0]": True,
        "ship[0]": False,
    }


def test_a_hook_that_raises_does_not_stop_the_others(default_store: Store) -> None:
    def broken(t: Any, task_run: TaskRun, state: State) -> None:
        raise OSError("compensation service down")

    fragile = reserve.with_options(name="fragile", on_rollback=[broken, undo])

    @flow
    def f() -> None:
        with legato.transaction():
            reserve("first")
            fragile("second")
            charge(3)
            ship(True)

    with pytest.raises(RuntimeError, match="carrier down"):  # the original error, not the hook's
        f()
    assert [r[1] for r in ROLLBACKS] == ["charge[0]", "fragile[0]", "reserve[0]"]
    run = default_store.list_flow_runs()[0]
    assert all(v for k, v in rolled_back(default_store, run.id).items() if not k.startswith("ship"))
    logs = [r.message for r in default_store.read_logs(run.id)]
    assert any("compensation service down" in m and "fragile[0]" in m for m in logs)


def test_submitted_tasks_join_the_transaction(default_store: Store) -> None:
    @flow
    def f() -> None:
        with legato.transaction():
            futures = reserve.map(["a", "b"])
            for fut in futures:
                fut.result()
            ship(True)

    with pytest.raises(RuntimeError):
        f()
    assert sorted(r[1] for r in ROLLBACKS) == ["reserve[0]", "reserve[1]"]


def test_transaction_outside_a_flow_is_an_error() -> None:
    with pytest.raises(TaskCallError, match="inside a @flow"), legato.transaction():
        pass


SHIP_FAILS = True


@flow
def resumable_order() -> str:
    with legato.transaction():
        reserve("lamp")
        charge(50)
        return ship(SHIP_FAILS)


def test_resume_after_rollback_runs_rolled_back_tasks_again(
    default_store: Store, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RuntimeError):
        resumable_order()
    run = default_store.list_flow_runs()[0]
    monkeypatch.setattr(__import__(__name__), "SHIP_FAILS", False)
    assert legato.resume_flow_run(run.id) == "shipped"
    counts = journal.counts()
    assert counts["reserve lamp"] == 2  # compensated, so done again
    assert counts["charge 50"] == 2
    assert counts["undo charge[0]"] == 1
    after = {t.call_key: t for t in default_store.list_task_runs(run.id)}
    assert after["charge[0]"].rolled_back is False  # the new completion replaces the record
    assert after["charge[0]"].state is StateType.COMPLETED
    assert default_store.get_flow_run(run.id).state is StateType.COMPLETED  # type: ignore[union-attr]


def test_pause_inside_a_transaction_does_not_roll_back(default_store: Store) -> None:
    @flow
    def f() -> str:
        with legato.transaction():
            reserve("x")
            legato.pause_flow_run()
            return charge(1)

    with pytest.raises(legato.FlowPaused) as info:
        f()
    assert ROLLBACKS == []
    assert legato.resume_flow_run(info.value.run_id, flow=f) == "payment:1"
    assert ROLLBACKS == []


BOOKED: list[str] = []


def cancel_booking(t: Any, task_run: TaskRun, state: State) -> None:
    BOOKED.remove(state.result())


@task(cache_key_fn=legato.task_input_hash, on_rollback=[cancel_booking])
def book(room: str) -> str:
    BOOKED.append(room)
    return room


@flow
def trip(declined: bool) -> str:
    with legato.transaction():
        room = book("101")
        if declined:
            raise RuntimeError("card declined")
    return room


def test_rolled_back_result_is_not_a_cache_hit(default_store: Store) -> None:
    BOOKED.clear()
    with pytest.raises(RuntimeError):
        trip(True)
    assert BOOKED == []  # compensated
    assert trip(False) == "101"
    assert BOOKED == ["101"]  # booked again, not served from the compensated run
    latest = default_store.list_flow_runs(limit=1)[0]
    (book_run,) = (t for t in default_store.list_task_runs(latest.id) if t.task_name == "book")
    assert not book_run.cached


BLOCK_FAILING = threading.Event()


@task(on_rollback=[undo])
def slow_reserve(item: str) -> str:
    assert BLOCK_FAILING.wait(30), "the transaction block never failed"
    record(f"reserve {item}")
    return f"reservation:{item}"


def failure(message: str) -> ValueError:
    BLOCK_FAILING.set()  # the reservation may finish now, not before
    return ValueError(message)


def test_task_still_running_when_the_block_fails_is_compensated(
    default_store: Store, journal: Journal
) -> None:
    BLOCK_FAILING.clear()

    @flow
    def f() -> None:
        with legato.transaction():
            slow_reserve.submit("late")
            raise failure("failed before the reservation finished")

    with pytest.raises(ValueError):
        f()
    assert journal.count("reserve late") == 1  # it did run to completion
    assert [r[1] for r in ROLLBACKS] == ["slow_reserve[0]"]
