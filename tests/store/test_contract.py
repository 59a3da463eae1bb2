"""The store contract: what every backend must do, through the abstract API only.

No SQL and no backend internals here: the PostgreSQL backend must pass this
same file unchanged.
"""

from __future__ import annotations

import pickle
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from legato.errors import RunOwnershipLost, StoreError
from legato.records import (
    AttemptInfo,
    Dependency,
    ErrorInfo,
    FlowRun,
    LogRecord,
    PauseInfo,
    RunOwner,
    StoredResult,
    TaskCompletion,
    TaskRun,
)
from legato.states import StateType
from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
S = StateType


def new_id() -> str:
    return uuid.uuid4().hex


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_run(**changes: Any) -> FlowRun:
    fields: dict[str, Any] = {
        "id": new_id(),
        "flow_name": "etl",
        "name": "brave-otter",
        "state": S.PENDING,
        "created": T0,
    }
    fields.update(changes)
    return FlowRun(**fields)


def make_owner(token: str | None = None) -> RunOwner:
    return RunOwner(token=token or new_id(), host="host-a", pid=4242, pid_started=1714563000.25)


def make_task(run: FlowRun, call_key: str = "extract[0]", **changes: Any) -> TaskRun:
    fields: dict[str, Any] = {
        "id": new_id(),
        "flow_run_id": run.id,
        "call_key": call_key,
        "task_name": call_key.split("[")[0],
        "name": call_key.replace("[", "-").rstrip("]"),
        "state": S.COMPLETED,
        "attempts": 1,
        "start_time": at(1),
        "end_time": at(2),
    }
    fields.update(changes)
    return TaskRun(**fields)


def make_log(
    run: FlowRun, message: str, *, task_run_id: str | None = None, sec: float = 0
) -> LogRecord:
    return LogRecord(
        flow_run_id=run.id,
        timestamp=at(sec),
        level=20,
        message=message,
        logger="legato.runs.flow.etl",
        task_run_id=task_run_id,
    )


def started(store: Store, **changes: Any) -> tuple[FlowRun, RunOwner]:
    """A run created and started (RUNNING) by a fresh owner."""
    run = make_run(**changes)
    store.create_flow_run(run)
    owner = make_owner()
    running = store.start_flow_run(run.id, owner, from_states=[run.state], now=at(1))
    assert running is not None
    return running, owner


def pickled(value: Any) -> StoredResult:
    return StoredResult(serializer="pickle", payload=pickle.dumps(value))


# --- lifecycle -------------------------------------------------------------------


def test_describes_itself(store: Store) -> None:
    assert store.backend != "abstract"
    assert store.schema_version() >= 1
    assert "://" in store.display_url


# --- flow runs: create, get, list ----------------------------------------------------


def test_created_run_reads_back_equal(store: Store) -> None:
    parent = make_run()
    store.create_flow_run(parent)
    run = make_run(
        state=S.SCHEDULED,
        parameters={"n": 3, "names": ["a", "b"], "nested": {"x": None, "y": 1.5}, "u": "é✓"},
        entrypoint="flows/etl.py:etl",
        flow_version="1.2.3",
        tags=("nightly", "team-a"),
        parent_run_id=parent.id,
        parent_call_key="etl[0]",
        start_time=at(5),
        end_time=at(9),
        state_message="waiting for a worker",
        error=ErrorInfo(type="ValueError", message="bad", traceback="Traceback...\n"),
        attempts=2,
        owner=make_owner(),
        heartbeat_at=at(8),
        cancel_requested=True,
        pause=PauseInfo(
            key="approve",
            input_model="mod:Approval",
            input_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}},
            timeout_at=at(3600),
        ),
        result_serializer="json",
    )
    store.create_flow_run(run)
    assert store.get_flow_run(run.id) == run


def test_minimal_run_reads_back_equal(store: Store) -> None:
    run = make_run()
    store.create_flow_run(run)
    got = store.get_flow_run(run.id)
    assert got == run
    assert got is not None and got.owner is None and got.pause is None and not got.has_result


def test_get_unknown_run_is_none(store: Store) -> None:
    assert store.get_flow_run(new_id()) is None


def test_creating_a_run_twice_raises_store_error(store: Store) -> None:
    run = make_run()
    store.create_flow_run(run)
    with pytest.raises(StoreError):
        store.create_flow_run(run)


def test_list_is_newest_first_and_limited(store: Store) -> None:
    runs = [make_run(created=at(i)) for i in (3, 1, 4, 2, 0)]
    for run in runs:
        store.create_flow_run(run)
    listed = store.list_flow_runs()
    assert [r.created for r in listed] == [at(i) for i in (4, 3, 2, 1, 0)]
    assert [r.id for r in store.list_flow_runs(limit=2)] == [r.id for r in listed[:2]]
    assert store.list_flow_runs(limit=0) == []


def test_list_filters_by_state_flow_name_and_parent(store: Store) -> None:
    parent = make_run(flow_name="outer", created=at(0))
    store.create_flow_run(parent)
    a = make_run(flow_name="etl", state=S.COMPLETED, created=at(1))
    b = make_run(flow_name="etl", state=S.FAILED, created=at(2))
    c = make_run(flow_name="report", state=S.FAILED, created=at(3))
    d = make_run(flow_name="etl", state=S.COMPLETED, created=at(4), parent_run_id=parent.id)
    for run in (a, b, c, d):
        store.create_flow_run(run)

    def ids(**filters: Any) -> list[str]:
        return [r.id for r in store.list_flow_runs(**filters)]

    assert ids(states=[S.FAILED]) == [c.id, b.id]
    assert ids(states=[S.FAILED, S.COMPLETED]) == [d.id, c.id, b.id, a.id]
    assert ids(flow_name="etl") == [d.id, b.id, a.id]
    assert ids(flow_name="etl", states=[S.COMPLETED]) == [d.id, a.id]
    assert ids(parent_run_id=parent.id) == [d.id]
    assert ids(flow_name="nope") == []
    assert ids(states=[S.PAUSED]) == []
    # An empty state list filters nothing (like not giving one).
    assert len(ids(states=[])) == 5


def test_match_run_ids_by_prefix(store: Store) -> None:
    ids = ["abc" + new_id()[3:], "abd" + new_id()[3:], "abd" + new_id()[3:], "b" + new_id()[1:]]
    for run_id in ids:
        store.create_flow_run(make_run(id=run_id))
    assert store.match_run_ids("abc") == [ids[0]]
    assert sorted(store.match_run_ids("abd")) == sorted(ids[1:3])
    assert len(store.match_run_ids("ab", limit=2)) == 2
    assert sorted(store.match_run_ids("ab", limit=10)) == sorted(ids[:3])
    assert store.match_run_ids(ids[3]) == [ids[3]]
    assert store.match_run_ids("abe") == []
    assert store.match_run_ids("f" * 40) == []


def test_parameters_blob_round_trip(store: Store) -> None:
    blob = pickle.dumps({"when": T0, "data": b"\x00\xff" * 100})
    with_blob = make_run()
    without = make_run()
    store.create_flow_run(with_blob, parameters_blob=blob)
    store.create_flow_run(without)
    assert store.get_parameters_blob(with_blob.id) == blob
    assert store.get_parameters_blob(without.id) is None
    assert store.get_parameters_blob(new_id()) is None


def test_find_child_run(store: Store) -> None:
    parent = make_run()
    store.create_flow_run(parent)
    child0 = make_run(parent_run_id=parent.id, parent_call_key="sub[0]")
    child1 = make_run(parent_run_id=parent.id, parent_call_key="sub[1]")
    store.create_flow_run(child0)
    store.create_flow_run(child1)
    assert store.find_child_run(parent.id, "sub[0]") == child0
    assert store.find_child_run(parent.id, "sub[1]") == child1
    assert store.find_child_run(parent.id, "sub[2]") is None
    assert store.find_child_run(child0.id, "sub[0]") is None


# --- flow runs: lifecycle --------------------------------------------------------


def test_start_moves_run_to_running_under_owner(store: Store) -> None:
    run = make_run()
    store.create_flow_run(run)
    owner = make_owner()
    got = store.start_flow_run(run.id, owner, from_states=[S.PENDING, S.SCHEDULED], now=at(10))
    assert got is not None
    assert got.state is S.RUNNING
    assert got.owner == owner
    assert got.start_time == at(10)
    assert got.heartbeat_at == at(10)
    assert got.attempts == 1
    assert store.get_flow_run(run.id) == got


def test_restart_increments_attempts_and_clears_the_previous_attempt(store: Store) -> None:
    run, owner = started(store)
    store.finish_flow_run(
        run.id,
        owner.token,
        state=S.FAILED,
        now=at(5),
        message="boom",
        error=ErrorInfo("RuntimeError", "boom", "tb"),
    )
    store.request_cancellation(run.id, now=at(6))  # failed: no effect
    second = make_owner()
    got = store.start_flow_run(run.id, second, from_states=[S.FAILED], now=at(20))
    assert got is not None
    assert got.state is S.RUNNING
    assert got.attempts == 2
    assert got.start_time == at(1)  # the first start is kept
    assert got.heartbeat_at == at(20)
    assert got.owner == second
    assert got.error is None and got.end_time is None and got.pause is None
    assert got.state_message is None
    assert not got.cancel_requested


def test_start_clears_cancel_request(store: Store) -> None:
    run, owner = started(store)
    store.request_cancellation(run.id, now=at(2))
    store.finish_flow_run(run.id, owner.token, state=S.CANCELLED, now=at(3))
    got = store.start_flow_run(run.id, make_owner(), from_states=[S.CANCELLED], now=at(4))
    assert got is not None and not got.cancel_requested


def test_start_refused_from_other_states_changes_nothing(store: Store) -> None:
    run, _ = started(store)
    before = store.get_flow_run(run.id)
    assert store.start_flow_run(run.id, make_owner(), from_states=[S.PENDING], now=at(9)) is None
    assert store.start_flow_run(run.id, make_owner(), from_states=[], now=at(9)) is None
    assert store.get_flow_run(run.id) == before
    assert store.start_flow_run(new_id(), make_owner(), from_states=[S.PENDING], now=at(9)) is None


def test_heartbeat_of_owner_and_of_lost_owner(store: Store) -> None:
    run, owner = started(store)
    reply = store.heartbeat_flow_run(run.id, owner.token, at(30))
    assert reply.still_owner and not reply.cancel_requested
    got = store.get_flow_run(run.id)
    assert got is not None and got.heartbeat_at == at(30)

    lost = store.heartbeat_flow_run(run.id, new_id(), at(40))
    assert not lost.still_owner
    got = store.get_flow_run(run.id)
    assert got is not None and got.heartbeat_at == at(30)

    missing = store.heartbeat_flow_run(new_id(), owner.token, at(40))
    assert not missing.still_owner and not missing.cancel_requested


def test_heartbeat_reports_cancel_request(store: Store) -> None:
    run, owner = started(store)
    assert store.request_cancellation(run.id, now=at(5)) is S.RUNNING
    reply = store.heartbeat_flow_run(run.id, owner.token, at(6))
    assert reply.still_owner and reply.cancel_requested


def test_finish_records_final_state_result_and_logs(store: Store) -> None:
    run, owner = started(store)
    result = pickled({"rows": 10})
    store.finish_flow_run(
        run.id,
        owner.token,
        state=S.COMPLETED,
        now=at(50),
        message="all good",
        result=result,
        logs=[make_log(run, "done", sec=49)],
    )
    got = store.get_flow_run(run.id)
    assert got is not None
    assert got.state is S.COMPLETED
    assert got.end_time == at(50)
    assert got.state_message == "all good"
    assert got.has_result and got.result_serializer == "pickle"
    assert store.get_flow_result(run.id) == result
    assert [log.message for log in store.read_logs(run.id)] == ["done"]


def test_finish_failed_keeps_error(store: Store) -> None:
    run, owner = started(store)
    error = ErrorInfo("KeyError", "'x'", "Traceback (most recent call last):\n  ...\n")
    store.finish_flow_run(run.id, owner.token, state=S.FAILED, now=at(3), error=error)
    got = store.get_flow_run(run.id)
    assert got is not None and got.error == error and got.state is S.FAILED
    assert not got.has_result and store.get_flow_result(run.id) is None


def test_finish_pending_between_retries_then_start_again(store: Store) -> None:
    run, owner = started(store)
    store.finish_flow_run(run.id, owner.token, state=S.PENDING, now=at(3), message="retry in 1s")
    got = store.get_flow_run(run.id)
    assert got is not None and got.state is S.PENDING and got.end_time is None
    again = store.start_flow_run(run.id, owner, from_states=[S.PENDING], now=at(4))
    assert again is not None and again.attempts == 2 and again.state is S.RUNNING


def test_finish_by_wrong_owner_raises_and_changes_nothing(store: Store) -> None:
    run, _ = started(store)
    before = store.get_flow_run(run.id)
    with pytest.raises(RunOwnershipLost) as caught:
        store.finish_flow_run(
            run.id,
            new_id(),
            state=S.COMPLETED,
            now=at(9),
            result=pickled(1),
            logs=[make_log(run, "should not be kept")],
        )
    assert caught.value.run_id == run.id
    assert store.get_flow_run(run.id) == before
    assert store.get_flow_result(run.id) is None
    assert store.read_logs(run.id) == []


def test_takeover_fences_the_previous_owner(store: Store) -> None:
    run, first = started(store)
    assert store.transition_flow_run(
        run.id,
        to_state=S.CRASHED,
        from_states=[S.RUNNING],
        now=at(5),
        expected_owner_token=first.token,
    )
    second = make_owner()
    assert store.start_flow_run(run.id, second, from_states=[S.CRASHED], now=at(6)) is not None
    with pytest.raises(RunOwnershipLost):
        store.record_task_run(make_task(run), first.token)
    with pytest.raises(RunOwnershipLost):
        store.finish_flow_run(run.id, first.token, state=S.COMPLETED, now=at(7))
    assert not store.heartbeat_flow_run(run.id, first.token, at(7)).still_owner
    store.record_task_run(make_task(run), second.token)
    store.finish_flow_run(run.id, second.token, state=S.COMPLETED, now=at(8))
    got = store.get_flow_run(run.id)
    assert got is not None and got.state is S.COMPLETED and got.owner == second


def test_pause_releases_owner_and_start_resumes(store: Store) -> None:
    run, owner = started(store)
    pause = PauseInfo(
        key="approve[0]",
        input_model="app.models:Approval",
        input_schema={"type": "object", "required": ["ok"]},
        timeout_at=at(7200),
    )
    store.pause_flow_run(run.id, owner.token, pause, now=at(10), logs=[make_log(run, "paused")])
    got = store.get_flow_run(run.id)
    assert got is not None
    assert got.state is S.PAUSED
    assert got.pause == pause
    assert got.owner is None
    assert [log.message for log in store.read_logs(run.id)] == ["paused"]
    # The released owner may no longer write.
    with pytest.raises(RunOwnershipLost):
        store.record_task_run(make_task(run), owner.token)

    resumer = make_owner()
    again = store.start_flow_run(run.id, resumer, from_states=[S.PAUSED], now=at(20))
    assert again is not None
    assert again.state is S.RUNNING and again.pause is None and again.owner == resumer
    assert again.attempts == 2


def test_pause_by_wrong_owner_raises_and_changes_nothing(store: Store) -> None:
    run, _ = started(store)
    before = store.get_flow_run(run.id)
    with pytest.raises(RunOwnershipLost):
        store.pause_flow_run(
            run.id, new_id(), PauseInfo(key="k"), now=at(3), logs=[make_log(run, "x")]
        )
    assert store.get_flow_run(run.id) == before
    assert store.read_logs(run.id) == []


def test_transition_is_compare_and_set(store: Store) -> None:
    run = make_run(state=S.SCHEDULED)
    store.create_flow_run(run)
    assert not store.transition_flow_run(
        run.id, to_state=S.PENDING, from_states=[S.RUNNING], now=at(1)
    )
    assert store.get_flow_run(run.id) == run
    assert store.transition_flow_run(
        run.id,
        to_state=S.PENDING,
        from_states=[S.SCHEDULED, S.PAUSED],
        now=at(1),
        message="queued",
    )
    got = store.get_flow_run(run.id)
    assert got is not None and got.state is S.PENDING and got.state_message == "queued"
    assert got.end_time is None
    assert not store.transition_flow_run(
        new_id(), to_state=S.PENDING, from_states=[S.SCHEDULED], now=at(1)
    )


def test_transition_to_final_state_sets_end_time_and_error(store: Store) -> None:
    run, owner = started(store)
    error = ErrorInfo("ProcessDied", "worker 4242 is gone")
    assert not store.transition_flow_run(
        run.id,
        to_state=S.CRASHED,
        from_states=[S.RUNNING],
        now=at(9),
        expected_owner_token=new_id(),
    )
    got = store.get_flow_run(run.id)
    assert got is not None and got.state is S.RUNNING
    assert store.transition_flow_run(
        run.id,
        to_state=S.CRASHED,
        from_states=[S.RUNNING],
        now=at(9),
        message="heartbeat lost",
        error=error,
        expected_owner_token=owner.token,
    )
    got = store.get_flow_run(run.id)
    assert got is not None
    assert got.state is S.CRASHED
    assert got.end_time == at(9)
    assert got.error == error
    assert got.state_message == "heartbeat lost"


def test_request_cancellation(store: Store) -> None:
    running, _ = started(store)
    assert store.request_cancellation(running.id, now=at(5)) is S.RUNNING
    got = store.get_flow_run(running.id)
    assert got is not None and got.state is S.RUNNING and got.cancel_requested

    paused, paused_owner = started(store)
    store.pause_flow_run(paused.id, paused_owner.token, PauseInfo(key="k"), now=at(2))
    for run in (paused, make_run(state=S.PENDING), make_run(state=S.SCHEDULED)):
        if run is not paused:
            store.create_flow_run(run)
        assert store.request_cancellation(run.id, now=at(5)) is S.CANCELLED
        got = store.get_flow_run(run.id)
        assert got is not None and got.state is S.CANCELLED and got.end_time == at(5)

    done, done_owner = started(store)
    store.finish_flow_run(done.id, done_owner.token, state=S.COMPLETED, now=at(3))
    before = store.get_flow_run(done.id)
    assert store.request_cancellation(done.id, now=at(5)) is S.COMPLETED
    assert store.get_flow_run(done.id) == before

    assert store.request_cancellation(new_id(), now=at(5)) is None


def test_flow_result_absent_until_stored(store: Store) -> None:
    run, owner = started(store)
    assert store.get_flow_result(run.id) is None
    assert store.get_flow_result(new_id()) is None
    payload = StoredResult(serializer="json", payload=b'{"a":[1,2]}')
    store.finish_flow_run(run.id, owner.token, state=S.COMPLETED, now=at(2), result=payload)
    assert store.get_flow_result(run.id) == payload


# --- run inputs ------------------------------------------------------------------


def test_run_inputs(store: Store) -> None:
    run = make_run()
    store.create_flow_run(run)
    assert store.get_run_input(run.id, "approve") == (False, None)
    store.save_run_input(run.id, "approve", None)
    assert store.get_run_input(run.id, "approve") == (True, None)
    store.save_run_input(run.id, "approve", '{"ok":true}')
    assert store.get_run_input(run.id, "approve") == (True, '{"ok":true}')
    store.save_run_input(run.id, "approve", '{"ok":false}')
    assert store.get_run_input(run.id, "approve") == (True, '{"ok":false}')
    assert store.get_run_input(run.id, "other") == (False, None)
    assert store.get_run_input(new_id(), "approve") == (False, None)


# --- task runs -------------------------------------------------------------------


def test_task_run_round_trips_exactly(store: Store) -> None:
    run, owner = started(store)
    upstream = make_task(run, "extract[0]")
    store.record_task_run(upstream, owner.token)
    task = make_task(
        run,
        "transform[0]",
        state=S.FAILED,
        attempts=3,
        cached=False,
        start_time=at(10),
        end_time=at(12.5),
        error=ErrorInfo("ZeroDivisionError", "division by zero", "Traceback ...\n"),
        inputs={"x": "1", "rows": "[1, 2, 3, ...]", "ü": "'ö'"},
        dependencies=(
            Dependency(upstream_id=upstream.id, kind="data", parameter="rows"),
            Dependency(upstream_id=new_id(), kind="wait_for"),
        ),
        parent_task_run_id=upstream.id,
        tags=("io", "slow"),
        cache_key="k-123",
        cache_expires_at=at(3600),
        result_serializer="pickle",
        attempt_log=(
            AttemptInfo(1, at(1), at(2), "failed", ErrorInfo("IOError", "flaky")),
            AttemptInfo(2, at(5), None, "crashed"),
            AttemptInfo(3, at(10), at(12.5), "failed", ErrorInfo("ZeroDivisionError", "/0")),
        ),
        host="node-7 (pid 4242)",
    )
    store.record_task_run(task, owner.token)
    assert store.get_task_run(task.id) == task
    assert store.find_task_run(run.id, "transform[0]") == task
    assert store.get_task_run(upstream.id) == upstream


def _completion(task: TaskRun) -> TaskCompletion:
    """The completion standing for the completed record ``task``."""
    assert task.start_time is not None and task.end_time is not None
    return TaskCompletion(
        task_run_id=task.id,
        flow_run_id=task.flow_run_id,
        call_key=task.call_key,
        task_name=task.task_name,
        attempts=task.attempts,
        start_time=task.start_time,
        end_time=task.end_time,
        dependencies=task.dependencies,
        parent_task_run_id=task.parent_task_run_id,
        tags=task.tags,
        args_fingerprint=task.args_fingerprint,
    )


def test_a_task_completion_records_what_record_task_run_does(store: Store) -> None:
    run, owner = started(store)
    upstream = make_task(run, "extract[0]")
    store.record_task_run(upstream, owner.token)
    result = pickled({"rows": 3})
    for call_key, changes in (
        ("plain[0]", {}),
        (
            "rich[0]",
            {
                "attempts": 2,
                "dependencies": (
                    Dependency(upstream_id=upstream.id, kind="data", parameter="rows"),
                ),
                "parent_task_run_id": upstream.id,
                "tags": ("io", "ü"),
                "args_fingerprint": "(3,)",
            },
        ),
    ):
        task = make_task(
            run,
            call_key,
            name=call_key,
            start_time=at(10),
            end_time=at(10.25),
            result_serializer="pickle",
            has_result=True,
            **changes,
        )
        assert _completion(task).task_run("pickle") == task
        store.record_task_completion(_completion(task), owner.token, result=result)
        assert store.get_task_run(task.id) == task
        assert store.find_task_run(run.id, call_key) == task
        assert store.get_task_result(task.id) == result
    # Written with the record, in its transaction.
    logged = make_task(run, "logged[0]", name="logged[0]", has_result=True)
    line = make_log(run, "task says hi", task_run_id=logged.id, sec=1)
    store.record_task_completion(_completion(logged), owner.token, result=result, logs=[line])
    assert store.get_task_run(logged.id) == replace(logged, result_serializer="pickle")
    assert [(log.message, log.task_run_id) for log in store.read_logs(run.id)] == [
        ("task says hi", logged.id)
    ]


def test_a_task_completion_is_fenced(store: Store) -> None:
    run, owner = started(store)
    task = make_task(run, has_result=True)
    line = make_log(run, "x", task_run_id=task.id)
    for logs in ((), (line,)):
        with pytest.raises(RunOwnershipLost) as caught:
            store.record_task_completion(_completion(task), new_id(), result=pickled(1), logs=logs)
        assert caught.value.run_id == run.id
    assert store.find_task_run(run.id, task.call_key) is None
    assert store.get_task_result(task.id) is None
    assert store.read_logs(run.id) == []
    store.record_task_completion(_completion(task), owner.token, result=pickled(1))
    assert store.get_task_result(task.id) == pickled(1)


def test_task_run_with_result_reports_it(store: Store) -> None:
    run, owner = started(store)
    task = make_task(run)
    result = StoredResult(serializer="cloudpickle", payload=b"\x80\x05K*.")
    store.record_task_run(task, owner.token, result=result)
    got = store.get_task_run(task.id)
    assert got is not None
    assert got.has_result and got.result_serializer == "cloudpickle"
    assert got == replace(task, has_result=True, result_serializer="cloudpickle")
    assert store.get_task_result(task.id) == result


def test_unknown_task_runs_are_none(store: Store) -> None:
    run, owner = started(store)
    store.record_task_run(make_task(run), owner.token)
    assert store.get_task_run(new_id()) is None
    assert store.find_task_run(run.id, "missing[0]") is None
    assert store.find_task_run(new_id(), "extract[0]") is None
    assert store.get_task_result(new_id()) is None
    assert store.list_task_runs(new_id()) == []
    assert store.count_task_runs(new_id()) == {}


def test_task_result_absent_when_not_persisted(store: Store) -> None:
    run, owner = started(store)
    task = make_task(run)
    store.record_task_run(task, owner.token)
    assert store.get_task_result(task.id) is None
    got = store.get_task_run(task.id)
    assert got is not None and not got.has_result


def test_recording_a_call_key_again_replaces_the_record(store: Store) -> None:
    run, owner = started(store)
    first = make_task(run, "load[0]", state=S.RUNNING, end_time=None)
    store.record_task_run(first, owner.token)
    second = make_task(run, "load[0]", state=S.COMPLETED, attempts=2, end_time=at(3))
    store.record_task_run(second, owner.token, result=pickled(5))
    assert store.find_task_run(run.id, "load[0]") == replace(
        second, has_result=True, result_serializer="pickle"
    )
    assert store.get_task_run(first.id) is None  # the id changed with the new record
    assert [t.id for t in store.list_task_runs(run.id)] == [second.id]
    assert store.count_task_runs(run.id) == {S.COMPLETED: 1}
    # A later record without a result drops the old result.
    third = make_task(run, "load[0]", id=second.id, state=S.FAILED)
    store.record_task_run(third, owner.token)
    assert store.get_task_result(second.id) is None


def test_task_run_write_is_fenced(store: Store) -> None:
    run, owner = started(store)
    task = make_task(run)
    with pytest.raises(RunOwnershipLost) as caught:
        store.record_task_run(
            task, new_id(), result=pickled(1), logs=[make_log(run, "x", task_run_id=task.id)]
        )
    assert caught.value.run_id == run.id
    assert store.find_task_run(run.id, task.call_key) is None
    assert store.get_task_run(task.id) is None
    assert store.read_logs(run.id) == []
    with pytest.raises(RunOwnershipLost):
        store.record_task_run(make_task(make_run()), owner.token)  # no such flow run


def test_task_run_logs_are_written_with_it(store: Store) -> None:
    run, owner = started(store)
    task = make_task(run)
    logs = [
        make_log(run, "flow says hi", sec=1),
        make_log(run, "task says hi", task_run_id=task.id, sec=1.5),
    ]
    store.record_task_run(task, owner.token, logs=logs)
    got = store.read_logs(run.id)
    assert [(log.message, log.task_run_id) for log in got] == [
        ("flow says hi", None),
        ("task says hi", task.id),
    ]


def test_list_task_runs_in_order_of_first_start(store: Store) -> None:
    run, owner = started(store)
    late = make_task(run, "b[0]", start_time=at(20), end_time=at(21))
    early = make_task(run, "a[0]", start_time=at(10), end_time=at(30))
    never = make_task(run, "c[0]", state=S.PENDING, start_time=None, end_time=None)
    middle = make_task(run, "a[1]", start_time=at(15), end_time=at(16))
    for task in (late, never, early, middle):  # recorded in finishing order
        store.record_task_run(task, owner.token)
    order = [early.id, middle.id, late.id, never.id]
    assert [t.id for t in store.list_task_runs(run.id)] == order
    # Running the first call again (a retry after resume) keeps its place.
    rerun = make_task(run, "a[0]", start_time=at(40), end_time=at(41))
    store.record_task_run(rerun, owner.token)
    assert [t.id for t in store.list_task_runs(run.id)] == [rerun.id, *order[1:]]
    assert store.find_task_run(run.id, "a[0]") == rerun


def test_count_task_runs_by_state(store: Store) -> None:
    run, owner = started(store)
    states = [S.COMPLETED, S.COMPLETED, S.FAILED, S.RUNNING, S.COMPLETED]
    for index, state in enumerate(states):
        store.record_task_run(make_task(run, f"t[{index}]", state=state), owner.token)
    assert store.count_task_runs(run.id) == {S.COMPLETED: 3, S.FAILED: 1, S.RUNNING: 1}


def test_mark_rolled_back(store: Store) -> None:
    run, owner = started(store)
    tasks = [make_task(run, f"t[{i}]") for i in range(3)]
    for task in tasks:
        store.record_task_run(task, owner.token)
    store.mark_rolled_back([], owner.token)
    with pytest.raises(RunOwnershipLost):
        store.mark_rolled_back([tasks[0].id], new_id())
    assert not any(t.rolled_back for t in store.list_task_runs(run.id))
    store.mark_rolled_back([tasks[0].id, tasks[2].id], owner.token)
    flags = {t.id: t.rolled_back for t in store.list_task_runs(run.id)}
    assert flags == {tasks[0].id: True, tasks[1].id: False, tasks[2].id: True}


# --- cache -----------------------------------------------------------------------


def test_cache_hit_and_expiry(store: Store) -> None:
    run, owner = started(store)
    task = make_task(run, cache_key="fetch:abc", cache_expires_at=at(100))
    result = pickled([1, 2, 3])
    store.record_task_run(task, owner.token, result=result)
    hit = store.get_cached_result("fetch:abc", at(50))
    assert hit is not None
    assert hit.cache_key == "fetch:abc"
    assert hit.task_run_id == task.id
    assert hit.result == result
    assert hit.expires_at == at(100)
    assert store.get_cached_result("fetch:abc", at(100)) is None
    assert store.get_cached_result("fetch:abc", at(101)) is None
    assert store.get_cached_result("other", at(50)) is None


def test_cache_without_expiry_never_expires(store: Store) -> None:
    run, owner = started(store)
    task = make_task(run, cache_key="forever")
    store.record_task_run(task, owner.token, result=pickled("v"))
    hit = store.get_cached_result("forever", at(10**8))
    assert hit is not None and hit.expires_at is None and hit.task_run_id == task.id


def test_cache_newest_entry_wins(store: Store) -> None:
    first_run, first_owner = started(store)
    second_run, second_owner = started(store)
    old = make_task(first_run, cache_key="k", cache_expires_at=at(1000))
    new = make_task(second_run, cache_key="k", cache_expires_at=at(2000))
    store.record_task_run(old, first_owner.token, result=pickled("old"))
    store.record_task_run(new, second_owner.token, result=pickled("new"))
    hit = store.get_cached_result("k", at(10))
    assert hit is not None and hit.task_run_id == new.id and hit.result == pickled("new")


def test_cache_hits_do_not_move_the_entry(store: Store) -> None:
    first_run, first_owner = started(store)
    second_run, second_owner = started(store)
    source = make_task(first_run, cache_key="k", cache_expires_at=at(100))
    store.record_task_run(source, first_owner.token, result=pickled("v"))
    reuse = make_task(second_run, cache_key="k", cached=True, cache_expires_at=at(10_000))
    store.record_task_run(reuse, second_owner.token, result=pickled("v"))
    hit = store.get_cached_result("k", at(50))
    assert hit is not None and hit.task_run_id == source.id and hit.expires_at == at(100)
    assert store.get_cached_result("k", at(200)) is None


def test_only_completed_task_runs_with_results_fill_the_cache(store: Store) -> None:
    run, owner = started(store)
    store.record_task_run(
        make_task(run, "a[0]", state=S.FAILED, cache_key="k1"), owner.token, result=pickled(1)
    )
    store.record_task_run(make_task(run, "b[0]", cache_key="k2"), owner.token)
    store.record_task_run(
        make_task(run, "c[0]", state=S.RUNNING, cache_key="k3"), owner.token, result=pickled(1)
    )
    for key in ("k1", "k2", "k3"):
        assert store.get_cached_result(key, at(5)) is None


def test_cache_entry_goes_when_its_task_run_is_replaced_by_a_failure(store: Store) -> None:
    run, owner = started(store)
    task = make_task(run, cache_key="k")
    store.record_task_run(task, owner.token, result=pickled(1))
    assert store.get_cached_result("k", at(5)) is not None
    store.record_task_run(make_task(run, id=task.id, state=S.FAILED), owner.token)
    assert store.get_cached_result("k", at(5)) is None


# --- logs ------------------------------------------------------------------------


def test_logs_append_read_and_page(store: Store) -> None:
    run = make_run()
    other = make_run()
    store.create_flow_run(run)
    store.create_flow_run(other)
    task_id = new_id()
    store.append_logs([])
    store.append_logs([make_log(run, f"line {i}", sec=i) for i in range(5)])
    store.append_logs([make_log(other, "elsewhere")])
    store.append_logs(
        [make_log(run, f"task line {i}", task_run_id=task_id, sec=10 + i) for i in range(3)]
    )
    logs = store.read_logs(run.id)
    assert [log.message for log in logs] == [f"line {i}" for i in range(5)] + [
        f"task line {i}" for i in range(3)
    ]
    ids = [log.id or 0 for log in logs]
    assert all(isinstance(log.id, int) for log in logs)
    assert ids == sorted(set(ids))  # increasing
    assert logs[2] == replace(make_log(run, "line 2", sec=2), id=logs[2].id)

    first_page = store.read_logs(run.id, limit=3)
    assert [log.message for log in first_page] == ["line 0", "line 1", "line 2"]
    last_id = first_page[-1].id
    assert last_id is not None
    next_page = store.read_logs(run.id, after_id=last_id, limit=3)
    assert [log.message for log in next_page] == ["line 3", "line 4", "task line 0"]
    assert store.read_logs(run.id, after_id=ids[-1]) == []

    task_logs = store.read_logs(run.id, task_run_id=task_id)
    assert [log.message for log in task_logs] == [f"task line {i}" for i in range(3)]
    assert [log.message for log in store.read_logs(run.id, task_run_id=task_id, limit=1)] == [
        "task line 0"
    ]
    assert [log.message for log in store.read_logs(other.id)] == ["elsewhere"]
    assert store.read_logs(new_id()) == []


# --- datetimes -------------------------------------------------------------------


def test_datetimes_come_back_utc_and_equal(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2031, 12, 31, 23, 59, 59, 999999, tzinfo=plus_two)
    run = make_run(created=created, start_time=datetime(1999, 1, 1, 0, 0, 0, 1, tzinfo=UTC))
    store.create_flow_run(run)
    got = store.get_flow_run(run.id)
    assert got is not None
    assert got.created == created and got.created.utcoffset() == timedelta(0)
    assert got.start_time == run.start_time
    assert got.start_time is not None and got.start_time.tzinfo is not None

    owner = make_owner()
    now = datetime(2024, 2, 29, 1, 2, 3, 456789, tzinfo=UTC)
    running = store.start_flow_run(run.id, owner, from_states=[S.PENDING], now=now)
    assert running is not None and running.heartbeat_at == now
    task = make_task(running, start_time=now, end_time=now + timedelta(microseconds=1))
    store.record_task_run(task, owner.token)
    got_task = store.get_task_run(task.id)
    assert got_task is not None
    assert got_task.start_time == now and got_task.end_time == task.end_time
    assert got_task.duration == pytest.approx(1e-6)
    store.append_logs([LogRecord(flow_run_id=run.id, timestamp=now, level=10, message="m")])
    assert store.read_logs(run.id)[0].timestamp == now


# --- concurrency -----------------------------------------------------------------


def test_threads_share_one_store(store: Store) -> None:
    runs = [started(store) for _ in range(4)]
    errors: list[BaseException] = []

    def work(run: FlowRun, owner: RunOwner) -> None:
        try:
            for i in range(25):
                task = make_task(run, f"t[{i}]")
                store.record_task_run(
                    task, owner.token, result=pickled(i), logs=[make_log(run, str(i))]
                )
                assert store.get_task_run(task.id) is not None
                store.heartbeat_flow_run(run.id, owner.token, at(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=pair) for pair in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for run, _ in runs:
        assert store.count_task_runs(run.id) == {S.COMPLETED: 25}
        assert len(store.read_logs(run.id)) == 25


def test_concurrent_task_writes_are_each_fenced(store: Store) -> None:
    # Many threads record task runs at once (as a .map fan-out does): every write
    # by the owner lands, every write with a stale token fails, and neither kind
    # leaks into the other even when a backend commits them together.
    run, owner = started(store)
    stale = "stale-" + owner.token
    outcomes: dict[str, str] = {}
    lock = threading.Lock()

    def work(worker: int) -> None:
        for i in range(40):
            key = f"w{worker}[{i}]"
            token = stale if i % 5 == 0 else owner.token
            try:
                store.record_task_run(make_task(run, key), token, result=pickled(i))
                outcome = "ok"
            except RunOwnershipLost:
                outcome = "lost"
            with lock:
                outcomes[key] = outcome

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = {f"w{w}[{i}]": ("lost" if i % 5 == 0 else "ok") for w in range(6) for i in range(40)}
    assert outcomes == expected
    recorded = {t.call_key for t in store.list_task_runs(run.id)}
    assert recorded == {key for key, outcome in expected.items() if outcome == "ok"}
