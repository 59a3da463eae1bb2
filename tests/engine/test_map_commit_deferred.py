"""A call submitted to the thread runner does not wait for its record's commit on its
own thread, yet its future resolves only once the record is committed."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
from _engine_support import wait_until

from legato import State, StateType, flow, task
from legato.engine.context import FLOW_CONTEXT
from legato.errors import RunLostError, RunStopped
from legato.records import TaskRun, utcnow
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")


def _inc(x: int) -> int:
    return x + 1


def _noop(*_: Any) -> None:
    pass


inc = task(name="inc")(_inc)
# The same task with a completion hook: its calls commit before their thread moves on.
inc_blocking = task(name="inc", on_completion=[_noop])(_inc)


def comparable(run: TaskRun) -> TaskRun:
    return replace(run, id="", flow_run_id="", start_time=None, end_time=None)


def test_a_map_records_what_the_blocking_path_records(default_store: Store) -> None:
    @flow
    def fan_out(n: int, blocking: bool) -> tuple[str, int]:
        ctx = FLOW_CONTEXT.get()
        assert ctx is not None
        futures = (inc_blocking if blocking else inc).map(range(n))
        return ctx.run.id, sum(f.result() for f in futures)

    records: list[list[TaskRun]] = []
    for blocking in (False, True):
        run_id, total = fan_out(1000, blocking)
        assert total == sum(range(1, 1001))
        runs = sorted(default_store.list_task_runs(run_id), key=lambda t: t.call_key)
        assert all(default_store.get_task_result(t.id) is not None for t in runs[:5])
        records.append([comparable(t) for t in runs])
    deferred, blocking_records = records
    assert len(deferred) == 1000
    assert deferred == blocking_records


def test_no_future_is_done_before_its_record_is_committed(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store holds every record back (nothing committed) until the test lets
    # them through: meanwhile no future of the map may be done.
    held: list[tuple[TaskRun, str, dict[str, Any]]] = []
    lock = threading.Lock()
    real = default_store.record_task_run_soon

    def holding(task_run: TaskRun, owner_token: str, **kwargs: Any) -> None:
        with lock:
            held.append((task_run, owner_token, kwargs))

    monkeypatch.setattr(default_store, "record_task_run_soon", holding)
    n = 20

    @flow
    def fan_out() -> list[int]:
        ctx = FLOW_CONTEXT.get()
        assert ctx is not None
        futures = inc.map(range(n))
        wait_until(lambda: len(held) == n, what="every record handed to the store")
        assert not any(f.done() for f in futures)
        assert default_store.list_task_runs(ctx.run.id) == []
        for task_run, owner_token, kwargs in held:
            real(task_run, owner_token, **kwargs)
        values = []
        for f in futures:
            values.append(f.result())
            recorded = default_store.find_task_run(ctx.run.id, f.call_key)
            assert recorded is not None and recorded.state is StateType.COMPLETED
        return values

    assert fan_out() == list(range(1, n + 1))


STOLEN_AT = 30


@task
def steal_or_inc(x: int) -> int:
    if x == STOLEN_AT:
        # What a reader that thinks the run dead does: the run is someone else's now.
        ctx = FLOW_CONTEXT.get()
        assert ctx is not None
        assert ctx.store.transition_flow_run(
            ctx.run.id,
            to_state=StateType.CRASHED,
            from_states=[StateType.RUNNING],
            now=utcnow(),
            message="marked by a reader in this test",
            expected_owner_token=ctx.owner_token,
        )
    return x + 1


def test_ownership_lost_mid_map_stops_the_run(default_store: Store) -> None:
    run_ids: list[str] = []
    told: list[Any] = []

    @flow
    def fan_out() -> int:
        ctx = FLOW_CONTEXT.get()
        assert ctx is not None
        run_ids.append(ctx.run.id)
        futures = steal_or_inc.map(range(200))
        stealer = futures[STOLEN_AT].wait_state()
        told.append(stealer.result(raise_on_failure=False))
        return sum(f.result() for f in futures)

    state = fan_out(return_state=True)
    assert isinstance(state, State) and state.type is StateType.CRASHED
    error = state.result(raise_on_failure=False)
    assert isinstance(error, RunLostError)
    (run_id,) = run_ids
    # The stealer's own future ends with the error a refused blocking write raises.
    (stopped,) = told
    assert isinstance(stopped, RunStopped) and stopped.lost
    final = default_store.get_flow_run(run_id)
    assert final is not None and final.state is StateType.CRASHED  # never flipped back
    recorded = {t.call_key: t.state for t in default_store.list_task_runs(run_id)}
    # The call that stole the run finished after it: its record was refused.
    assert f"steal_or_inc[{STOLEN_AT}]" not in recorded
    assert len(recorded) < 200
