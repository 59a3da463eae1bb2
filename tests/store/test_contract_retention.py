"""Status and retention contract (`legato db status` / `prune`), on every backend."""

from __future__ import annotations

import pickle
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from legato.errors import ConfigurationError
from legato.records import FlowRun, LogRecord, RunOwner, StoredResult, TaskRun
from legato.states import StateType
from legato.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
S = StateType
CUTOFF = T0 + timedelta(days=30)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


class Built:
    """A run with everything that hangs off it, for checking what a prune leaves."""

    def __init__(self, run: FlowRun, task: TaskRun | None, cache_key: str) -> None:
        self.run, self.task, self.cache_key = run, task, cache_key


def build(
    store: Store,
    *,
    state: StateType = S.COMPLETED,
    ended_day: float | None = 1,
    created_day: float = 0,
    parent: FlowRun | None = None,
    tasks: int = 2,
) -> Built:
    run = FlowRun(
        id=uuid.uuid4().hex,
        flow_name="etl",
        name="r",
        state=S.PENDING,
        created=at(created_day),
        parent_run_id=parent.id if parent else None,
        parent_call_key=f"child[{uuid.uuid4().hex[:6]}]" if parent else None,
    )
    store.create_flow_run(run)
    owner = RunOwner(token=uuid.uuid4().hex, host="h", pid=1)
    store.start_flow_run(run.id, owner, from_states=[S.PENDING], now=at(created_day))
    cache_key = f"cache-{run.id}"
    first: TaskRun | None = None
    for n in range(tasks):
        task = TaskRun(
            id=uuid.uuid4().hex,
            flow_run_id=run.id,
            call_key=f"step[{n}]",
            task_name="step",
            name=f"step-{n}",
            state=S.COMPLETED,
            start_time=at(created_day),
            end_time=at(created_day),
            cache_key=cache_key if n == 0 else None,
        )
        log = LogRecord(flow_run_id=run.id, timestamp=at(created_day), level=20, message="hi")
        result = StoredResult("pickle", pickle.dumps(n))
        store.record_task_run(task, owner.token, result=result, logs=[log])
        first = first or task
    store.save_run_input(run.id, "pause[0]", '{"ok": true}')
    if state is S.PAUSED:
        from legato.records import PauseInfo

        store.pause_flow_run(run.id, owner.token, PauseInfo(key="pause[0]"), now=at(1))
    elif state is not S.RUNNING:
        store.finish_flow_run(
            run.id, owner.token, state=state, now=at(ended_day if ended_day is not None else 0)
        )
    return Built(store.get_flow_run(run.id) or run, first, cache_key)


def gone(store: Store, built: Built) -> bool:
    run_id = built.run.id
    return (
        store.get_flow_run(run_id) is None
        and store.list_task_runs(run_id) == []
        and (built.task is None or store.get_task_result(built.task.id) is None)
        and store.read_logs(run_id) == []
        and store.get_run_input(run_id, "pause[0]") == (False, None)
        and store.get_cached_result(built.cache_key, at(0)) is None
    )


def kept(store: Store, built: Built) -> bool:
    run_id = built.run.id
    return (
        store.get_flow_run(run_id) is not None
        and len(store.list_task_runs(run_id)) >= 1
        and store.read_logs(run_id) != []
        and store.get_cached_result(built.cache_key, at(0)) is not None
    )


def prune(store: Store, **options: Any) -> Any:
    return store.prune_flow_runs(
        finished_before=CUTOFF, states=options.pop("states", ()), **options
    )


# --- status ----------------------------------------------------------------------------


def test_status_counts_rows_and_names_the_store(store: Store) -> None:
    build(store, tasks=3)
    build(store, tasks=1)
    status = store.describe()
    assert status.backend in ("sqlite", "postgresql")
    assert status.url == store.display_url
    assert status.schema_version == status.latest_version == store.schema_version()
    assert status.size_bytes > 0
    assert status.row_counts["flow_runs"] == 2
    assert status.row_counts["task_runs"] == 4  # journaled ones too (SQLite)
    assert status.row_counts["logs"] == 4
    assert status.row_counts["run_inputs"] == 2
    assert status.row_counts["task_cache"] == 2
    assert status.row_counts["deployments"] == 0


# --- prune -----------------------------------------------------------------------------


def test_prune_deletes_old_finished_runs_with_everything_they_own(store: Store) -> None:
    old = [build(store, state=state, ended_day=2) for state in (S.COMPLETED, S.FAILED, S.CANCELLED)]
    result = prune(store)
    assert (result.flow_runs, result.task_runs, result.logs) == (3, 6, 6)
    assert all(gone(store, b) for b in old)
    assert store.describe().row_counts == {
        "flow_runs": 0,
        "task_runs": 0,
        "logs": 0,
        "run_inputs": 0,
        "task_cache": 0,
        "deployments": 0,
    }


def test_prune_keeps_recent_active_and_unchosen_runs(store: Store) -> None:
    recent = build(store, ended_day=31)
    long_lived = build(store, created_day=0, ended_day=40)  # created long ago, ended lately
    running = build(store, state=S.RUNNING)
    paused = build(store, state=S.PAUSED)
    failed = build(store, state=S.FAILED, ended_day=2)
    old_done = build(store, ended_day=2)
    result = prune(store, states=[S.COMPLETED])
    assert result.flow_runs == 1
    assert gone(store, old_done)
    for built in (recent, long_lived, running, paused, failed):
        assert kept(store, built)


def test_a_parent_goes_with_its_subflow_runs_and_a_kept_parent_keeps_them(store: Store) -> None:
    parent = build(store, ended_day=3)
    child = build(store, parent=parent.run, ended_day=2)
    grandchild = build(store, parent=child.run, ended_day=2)
    recent_parent = build(store, ended_day=35)
    old_child_of_recent = build(store, parent=recent_parent.run, ended_day=2)
    result = prune(store)
    assert result.flow_runs == 3
    assert gone(store, parent) and gone(store, child) and gone(store, grandchild)
    assert kept(store, recent_parent) and kept(store, old_child_of_recent)


def test_a_dry_run_counts_without_deleting(store: Store) -> None:
    old = [build(store, ended_day=2) for _ in range(3)]
    counted = prune(store, dry_run=True, batch_size=1)
    assert (counted.flow_runs, counted.task_runs, counted.logs) == (3, 6, 6)
    assert all(kept(store, b) for b in old)


def test_batches_smaller_than_the_work_still_prune_everything(store: Store) -> None:
    old = [build(store, ended_day=2, tasks=1) for _ in range(7)]
    result = prune(store, batch_size=2)
    assert result.flow_runs == 7
    assert all(gone(store, b) for b in old)


def test_only_final_states_can_be_pruned(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="cannot prune runs that are running"):
        prune(store, states=[S.RUNNING])
    with pytest.raises(ConfigurationError, match="at least 1"):
        prune(store, batch_size=0)


def test_a_writer_keeps_working_while_a_prune_runs(store: Store) -> None:
    for _ in range(40):
        build(store, ended_day=2, tasks=3)
    live = build(store, state=S.RUNNING, tasks=0)
    owner_token = live.run.owner.token  # type: ignore[union-attr]
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        n = 0
        try:
            while not done.is_set() or n < 20:
                task = TaskRun(
                    id=uuid.uuid4().hex,
                    flow_run_id=live.run.id,
                    call_key=f"live[{n}]",
                    task_name="live",
                    name=f"live-{n}",
                    state=S.COMPLETED,
                )
                store.record_task_run(task, owner_token)
                n += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        result = prune(store, batch_size=3)
    finally:
        done.set()
        writer.join(60)
    assert errors == []
    assert result.flow_runs == 40
    assert len(store.list_task_runs(live.run.id)) >= 20
