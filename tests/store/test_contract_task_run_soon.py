"""Contract of `Store.record_task_run_soon`: a task-run record written possibly after
the call returns, its outcome reported once to ``committed`` (every backend)."""

from __future__ import annotations

import pickle
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from legato.errors import RunOwnershipLost
from legato.records import FlowRun, LogRecord, RunOwner, StoredResult, TaskRun
from legato.states import StateType
from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def started(store: Store) -> tuple[FlowRun, str]:
    run = FlowRun(id=uuid.uuid4().hex, flow_name="etl", name="r", state=StateType.PENDING)
    store.create_flow_run(run)
    owner = RunOwner(token=uuid.uuid4().hex, host="h", pid=1)
    assert store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=T0)
    return run, owner.token


def task(run: FlowRun, key: str, **changes: Any) -> TaskRun:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "flow_run_id": run.id,
        "call_key": key,
        "task_name": "t",
        "name": key,
        "state": StateType.COMPLETED,
        "attempts": 1,
        "start_time": T0,
        "end_time": T0,
    }
    fields.update(changes)
    return TaskRun(**fields)


def pickled(value: Any) -> StoredResult:
    return StoredResult(serializer="pickle", payload=pickle.dumps(value))


class Outcomes:
    """What ``committed`` was told per call key, and whether the row was readable then."""

    def __init__(self, store: Store, run: FlowRun) -> None:
        self.store = store
        self.run = run
        self.told: dict[str, list[BaseException | None]] = {}
        self.readable: dict[str, bool] = {}
        self.lock = threading.Lock()
        self.all_told = threading.Event()
        self.expected = 0

    def callback(self, key: str) -> Any:
        def committed(exc: BaseException | None) -> None:
            readable = self.store.find_task_run(self.run.id, key) is not None
            with self.lock:
                self.told.setdefault(key, []).append(exc)
                self.readable[key] = readable
                if len(self.told) >= self.expected:
                    self.all_told.set()

        return committed


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"state": StateType.FAILED},  # written with its event
        {"cache_key": "k"},  # with a cache entry
    ],
    ids=["plain", "failed", "cached"],
)
def test_committed_once_after_the_row_is_readable(store: Store, changes: dict[str, Any]) -> None:
    run, token = started(store)
    outcomes = Outcomes(store, run)
    outcomes.expected = 1
    record = task(run, "t[0]", **changes)
    store.record_task_run_soon(
        record, token, result=pickled(1), committed=outcomes.callback("t[0]")
    )
    assert outcomes.all_told.wait(30)
    assert outcomes.told == {"t[0]": [None]}
    assert outcomes.readable == {"t[0]": True}
    assert store.get_task_result(record.id) == pickled(1)


def test_logs_are_written_with_the_record(store: Store) -> None:
    run, token = started(store)
    outcomes = Outcomes(store, run)
    outcomes.expected = 1
    record = task(run, "t[0]")
    log = LogRecord(
        flow_run_id=run.id, task_run_id=record.id, timestamp=T0, level=20, logger="l", message="hi"
    )
    store.record_task_run_soon(record, token, logs=[log], committed=outcomes.callback("t[0]"))
    assert outcomes.all_told.wait(30)
    assert outcomes.told == {"t[0]": [None]} and outcomes.readable == {"t[0]": True}
    assert [entry.message for entry in store.read_logs(run.id)] == ["hi"]


def test_a_stale_owner_token_is_told_ownership_lost_and_nothing_is_written(store: Store) -> None:
    run, token = started(store)
    outcomes = Outcomes(store, run)
    outcomes.expected = 1
    store.record_task_run_soon(
        task(run, "t[0]"), "stale-" + token, result=pickled(1), committed=outcomes.callback("t[0]")
    )
    assert outcomes.all_told.wait(30)
    [told] = outcomes.told["t[0]"]
    assert isinstance(told, RunOwnershipLost) and told.run_id == run.id
    assert store.list_task_runs(run.id) == []


def test_many_threads_each_record_written_once(store: Store) -> None:
    # As a .map fan-out does: every owner's record lands exactly once and its
    # callback is told so once; every stale one is told it lost and is not written.
    run, token = started(store)
    outcomes = Outcomes(store, run)
    workers, per_worker = 6, 50
    outcomes.expected = workers * per_worker

    def work(worker: int) -> None:
        for i in range(per_worker):
            key = f"w{worker}[{i}]"
            owner = "stale" if i % 7 == 0 else token
            store.record_task_run_soon(
                task(run, key), owner, result=pickled(i), committed=outcomes.callback(key)
            )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.all_told.wait(30)
    for w in range(workers):
        for i in range(per_worker):
            key = f"w{w}[{i}]"
            [told] = outcomes.told[key]
            if i % 7 == 0:
                assert isinstance(told, RunOwnershipLost), key
            else:
                assert told is None and outcomes.readable[key], key
    recorded = [t.call_key for t in store.list_task_runs(run.id)]
    assert sorted(recorded) == sorted(
        f"w{w}[{i}]" for w in range(workers) for i in range(per_worker) if i % 7
    )
