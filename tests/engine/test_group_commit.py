"""The SQLite store's task-run write: a caller alone writes directly, callers that
arrive while another commit is in progress share the next commit; both are fenced."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from legato.errors import RunOwnershipLost
from legato.records import FlowRun, RunOwner, TaskRun
from legato.states import StateType
from legato.store.sqlite.store import SQLiteStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def started(store: SQLiteStore) -> tuple[FlowRun, str]:
    run = FlowRun(id=uuid.uuid4().hex, flow_name="f", name="f-1", state=StateType.PENDING)
    store.create_flow_run(run)
    owner = RunOwner(token=uuid.uuid4().hex, host="h", pid=1)
    assert store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=NOW)
    return run, owner.token


def task_run(run: FlowRun, key: str) -> TaskRun:
    return TaskRun(
        id=uuid.uuid4().hex,
        flow_run_id=run.id,
        call_key=key,
        task_name="t",
        name=key,
        state=StateType.COMPLETED,
        attempts=1,
        start_time=NOW,
        end_time=NOW,
    )


def test_a_lone_write_is_fenced_and_committed(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "legato.db")
    try:
        run, token = started(store)
        with pytest.raises(RunOwnershipLost):
            store.record_task_run(task_run(run, "t[0]"), "stale-" + token)
        store.record_task_run(task_run(run, "t[1]"), token)
        assert [t.call_key for t in store.list_task_runs(run.id)] == ["t[1]"]
    finally:
        store.close()


def test_writes_queued_behind_a_commit_share_the_next_one(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "legato.db")
    try:
        run, token = started(store)
        outcomes: dict[str, str] = {}
        lock = threading.Lock()

        def record(key: str, owner_token: str) -> None:
            try:
                store.record_task_run(task_run(run, key), owner_token)
                outcome = "ok"
            except RunOwnershipLost:
                outcome = "lost"
            with lock:
                outcomes[key] = outcome

        # Another thread's commit in progress: every caller must queue and wait.
        store._commit_lock.acquire()
        threads = [
            threading.Thread(target=record, args=(f"t[{n}]", token if n != 2 else "stale"))
            for n in range(4)
        ]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 30
            while len(store._queue) < len(threads) and time.monotonic() < deadline:
                time.sleep(0.005)  # polling the condition, not guessing a duration
            assert len(store._queue) == len(threads)
            assert outcomes == {}  # nobody returned before its record was committed
        finally:
            store._commit_lock.release()
        for thread in threads:
            thread.join(30)
        assert outcomes == {"t[0]": "ok", "t[1]": "ok", "t[2]": "lost", "t[3]": "ok"}
        recorded = sorted(t.call_key for t in store.list_task_runs(run.id))
        assert recorded == ["t[0]", "t[1]", "t[3]"]
    finally:
        store.close()
