"""Resume and replay: completed task calls return stored results, the rest run again.

Flows live at module level so a resumed run finds the same flow object. Tasks
record their side effects in the test's journal file; a marker file (or a
module global) decides whether the flaky step fails.
"""

from __future__ import annotations

import os
import pickle
import uuid
from pathlib import Path
from typing import Any

import pytest
from _engine_support import Journal, dead_pid, record

import legato
from legato import State, StateType, flow, get_run_context, task
from legato.client import Client
from legato.engine.calls import resume_run
from legato.engine.flow_engine import create_flow_run
from legato.engine.liveness import hostname
from legato.errors import (
    AmbiguousRunIdError,
    NonDeterministicFlowError,
    RunNotFoundError,
    RunStateError,
)
from legato.records import FlowRun, RunOwner, StoredResult, TaskRun, utcnow
from legato.store.base import Store


def marker() -> Path:
    return Path(os.environ["LEGATO_TEST_JOURNAL"]).with_name("broken")


def latest_run(store: Store, flow_name: str) -> FlowRun:
    runs = store.list_flow_runs(flow_name=flow_name, limit=1)
    assert runs, f"no run of {flow_name}"
    return runs[0]


def tasks_by_key(store: Store, run_id: str) -> dict[str, TaskRun]:
    return {t.call_key: t for t in store.list_task_runs(run_id)}


# --- a flow that fails at its last step until the marker is removed ---------------------


@task
def extract(n: int) -> list[int]:
    record("extract")
    return list(range(1, n + 1))


@task
def scale(x: int) -> int:
    record(f"scale {x}")
    return x * 10


@task(retries=1)
def load(rows: list[int]) -> int:
    ctx = get_run_context()
    record(f"load attempt={ctx.attempt} key={ctx.idempotency_key}")
    if marker().exists():
        raise ConnectionError("warehouse unavailable")
    return sum(rows)


@flow
def etl(n: int = 3) -> int:
    record("flow body")
    rows = extract(n)
    scaled = [fut.result() for fut in scale.map(rows)]
    return load(scaled)


def test_resume_failed_run_replays_completed_tasks(default_store: Store, journal: Journal) -> None:
    marker().touch()
    with pytest.raises(ConnectionError, match="warehouse unavailable"):
        etl(4)
    run = latest_run(default_store, "etl")
    assert run.state is StateType.FAILED
    first = tasks_by_key(default_store, run.id)
    assert first["load[0]"].state is StateType.FAILED
    assert first["load[0]"].attempts == 2  # retries=1

    marker().unlink()
    assert legato.resume_flow_run(run.id) == 100

    counts = journal.counts()
    assert counts["extract"] == 1
    assert all(counts[f"scale {x}"] == 1 for x in range(1, 5))
    assert counts["flow body"] == 2  # code outside tasks re-runs
    loads = [line for line in journal.lines() if line.startswith("load")]
    assert len(loads) == 3  # two failed attempts, one after the resume
    # Attempts accumulate across resumes; the idempotency key never changes.
    key = f"{run.id}/load[0]"
    assert loads == [
        f"load attempt=1 key={key}",
        f"load attempt=2 key={key}",
        f"load attempt=3 key={key}",
    ]

    resumed = default_store.get_flow_run(run.id)
    assert resumed is not None
    assert resumed.state is StateType.COMPLETED
    assert resumed.attempts == 2
    after = tasks_by_key(default_store, run.id)
    assert set(after) == {"extract[0]", "scale[0]", "scale[1]", "scale[2]", "scale[3]", "load[0]"}
    assert after["load[0]"].id == first["load[0]"].id  # same task run, continued
    assert after["load[0]"].attempts == 3
    assert after["load[0]"].state is StateType.COMPLETED
    assert after["extract[0]"] == first["extract[0]"]  # untouched record
    # Parameters came back from the store: n=4.
    assert resumed.parameters == {"n": 4}


def test_resume_by_id_prefix(default_store: Store, journal: Journal) -> None:
    marker().touch()
    with pytest.raises(ConnectionError):
        etl(2)
    run = latest_run(default_store, "etl")
    marker().unlink()
    assert legato.resume_flow_run(run.id[:8]) == 30
    assert journal.count("extract") == 1
    with pytest.raises(RunNotFoundError, match="no flow run matches 'zzzz'"):
        legato.resume_flow_run("zzzz")


def test_ambiguous_prefix_is_refused(default_store: Store) -> None:
    for run_id in ("abc1" + "0" * 28, "abc2" + "0" * 28):
        default_store.create_flow_run(FlowRun(id=run_id, flow_name="x", name="x", state="failed"))  # type: ignore[arg-type]
    with pytest.raises(AmbiguousRunIdError, match="'abc' is ambiguous"):
        legato.resume_flow_run("abc")


def test_resume_completed_run_is_refused(default_store: Store, journal: Journal) -> None:
    assert etl(1) == 10
    run = latest_run(default_store, "etl")
    with pytest.raises(RunStateError, match="already completed"):
        legato.resume_flow_run(run.id)
    assert journal.count("extract") == 1


def test_resume_running_run_is_refused(default_store: Store) -> None:
    run = create_flow_run(etl, default_store, {"n": 1})
    owner = RunOwner(token="t", host=hostname(), pid=os.getpid())
    default_store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=utcnow())
    with pytest.raises(RunStateError, match=f"is running \\(pid {os.getpid()}"):
        legato.resume_flow_run(run.id)


def test_failed_run_fails_again_and_can_be_resumed_again(
    default_store: Store, journal: Journal
) -> None:
    marker().touch()
    with pytest.raises(ConnectionError):
        etl(1)
    run = latest_run(default_store, "etl")
    with pytest.raises(ConnectionError):
        legato.resume_flow_run(run.id)
    assert default_store.get_flow_run(run.id).state is StateType.FAILED  # type: ignore[union-attr]
    marker().unlink()
    assert legato.resume_flow_run(run.id) == 10
    assert journal.count("extract") == 1
    assert journal.count("scale 1") == 1
    assert tasks_by_key(default_store, run.id)["load[0]"].attempts == 5


# --- non-determinism ------------------------------------------------------------------

VARIANT = "a"


@task(call_key="pick")
def pick_a() -> str:
    return "a"


@task(call_key="pick")
def pick_b() -> str:
    return "b"


@task
def must_not_be_broken() -> None:
    if marker().exists():
        raise RuntimeError("broken")


@flow
def shifting() -> str:
    picked = pick_a() if VARIANT == "a" else pick_b()
    must_not_be_broken()
    return picked


def test_changed_task_at_a_key_is_a_non_determinism_error(
    default_store: Store, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker().touch()
    with pytest.raises(RuntimeError, match="broken"):
        shifting()
    run = latest_run(default_store, "shifting")
    marker().unlink()
    monkeypatch.setattr(__import__(__name__), "VARIANT", "b")
    with pytest.raises(NonDeterministicFlowError) as info:
        legato.resume_flow_run(run.id)
    message = str(info.value)
    assert "'pick'" in message and "'pick_a'" in message and "'pick_b'" in message
    assert run.id in message
    # Nothing was silently reused; the run failed with the error and the record stayed.
    after = default_store.get_flow_run(run.id)
    assert after is not None and after.state is StateType.FAILED
    assert after.error is not None and after.error.type == "NonDeterministicFlowError"
    assert tasks_by_key(default_store, run.id)["pick"].task_name == "pick_a"
    # Undoing the change lets the run resume.
    monkeypatch.setattr(__import__(__name__), "VARIANT", "a")
    assert legato.resume_flow_run(run.id) == "a"


CHARGES: list[int] = []
FAIL_AFTER_CHARGES = True


@task(call_key="charge")
def charge(amount: int) -> int:
    CHARGES.append(amount)
    return amount


@flow
def pay_twice() -> tuple[int, int]:
    first = charge(10)
    second = charge(20)
    if FAIL_AFTER_CHARGES:
        raise RuntimeError("after charges")
    return first, second


def test_same_explicit_call_key_twice_in_a_run_is_an_error(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    CHARGES.clear()
    with pytest.raises(legato.LegatoError, match="charge"):
        pay_twice()
    assert CHARGES == [10]  # the second call is refused before it runs


# --- subflows -------------------------------------------------------------------------


@task
def child_step(x: int) -> int:
    record(f"child_step {x}")
    return x + 1


@flow
def steady_child(x: int) -> int:
    record("steady_child body")
    return child_step(x)


@flow
def flaky_child(x: int) -> int:
    record("flaky_child body")
    value = child_step(x)
    if marker().exists():
        raise RuntimeError("child broken")
    return value


@flow
def parent_of_two() -> int:
    return steady_child(1) + flaky_child(10)


def test_subflow_replay(default_store: Store, journal: Journal) -> None:
    marker().touch()
    with pytest.raises(RuntimeError, match="child broken"):
        parent_of_two()
    parent = latest_run(default_store, "parent_of_two")
    children = {c.flow_name: c for c in default_store.list_flow_runs(parent_run_id=parent.id)}
    assert children["steady_child"].state is StateType.COMPLETED
    assert children["flaky_child"].state is StateType.FAILED

    marker().unlink()
    assert legato.resume_flow_run(parent.id) == 2 + 11

    after = {c.flow_name: c for c in default_store.list_flow_runs(parent_run_id=parent.id)}
    assert len(default_store.list_flow_runs(parent_run_id=parent.id)) == 2  # no new child
    assert after["steady_child"].id == children["steady_child"].id
    assert after["flaky_child"].id == children["flaky_child"].id  # resumed, not recreated
    assert after["flaky_child"].state is StateType.COMPLETED
    assert after["flaky_child"].attempts == 2
    assert after["steady_child"].attempts == 1
    counts = journal.counts()
    assert counts["steady_child body"] == 1  # a completed child is not re-run at all
    assert counts["child_step 1"] == 1
    assert counts["flaky_child body"] == 2  # the failed child's body re-runs...
    assert counts["child_step 10"] == 1  # ...but its completed task replays


# --- results that were not persisted ------------------------------------------------------


@task(persist_result=False)
def volatile() -> str:
    record("volatile")
    return "fresh"


@task
def durable() -> str:
    record("durable")
    return "kept"


@flow
def mixed() -> str:
    value = volatile() + durable()
    must_not_be_broken()
    return value


def test_persist_result_false_task_reruns_on_resume(default_store: Store, journal: Journal) -> None:
    marker().touch()
    with pytest.raises(RuntimeError):
        mixed()
    run = latest_run(default_store, "mixed")
    records = tasks_by_key(default_store, run.id)
    assert records["volatile[0]"].state is StateType.COMPLETED
    assert not records["volatile[0]"].has_result
    assert default_store.get_task_result(records["volatile[0]"].id) is None
    marker().unlink()
    assert legato.resume_flow_run(run.id) == "freshkept"
    assert journal.counts() == {"volatile": 2, "durable": 1}


# --- replayed values ----------------------------------------------------------------------


@task(result_serializer="cloudpickle")
def make_multiplier(n: int) -> Any:
    record("make_multiplier")
    return lambda x: x * n


@task(result_serializer="json")
def as_json() -> dict[str, Any]:
    record("as_json")
    return {"k": [1, 2]}


@flow
def replays_values() -> tuple[int, dict[str, Any]]:
    times3 = make_multiplier(3)
    data = as_json()
    must_not_be_broken()
    return times3(5), data


def test_replayed_values_come_back_through_their_serializer(
    default_store: Store, journal: Journal
) -> None:
    marker().touch()
    with pytest.raises(RuntimeError):
        replays_values()
    run = latest_run(default_store, "replays_values")
    marker().unlink()
    assert legato.resume_flow_run(run.id) == (15, {"k": [1, 2]})
    assert journal.counts() == {"make_multiplier": 1, "as_json": 1}


# --- crashed runs and on_crashed -------------------------------------------------------------

CRASH_HOOK_CALLS: list[tuple[str, str, StateType, str]] = []


def note_crash(f: Any, run: FlowRun, state: State) -> None:
    CRASH_HOOK_CALLS.append((f.name, run.id, state.type, state.message or ""))


@task
def before_crash() -> str:
    record("before_crash")
    return "computed now"


@task
def after_crash(value: str) -> str:
    record("after_crash")
    return value + "!"


@flow(on_crashed=[note_crash])
def crashable() -> str:
    return after_crash(before_crash())


def simulate_crash(store: Store) -> FlowRun:
    """A crashable run left 'running' by a process that is gone, after before_crash[0]."""
    run = create_flow_run(crashable, store, {})
    token = uuid.uuid4().hex
    owner = RunOwner(token=token, host=hostname(), pid=dead_pid(), pid_started=None)
    started = store.start_flow_run(run.id, owner, from_states=[StateType.PENDING], now=utcnow())
    assert started is not None
    store.record_task_run(
        TaskRun(
            id=uuid.uuid4().hex,
            flow_run_id=run.id,
            call_key="before_crash[0]",
            task_name="before_crash",
            name="before_crash[0]",
            state=StateType.COMPLETED,
            attempts=1,
            start_time=utcnow(),
            end_time=utcnow(),
            result_serializer="pickle",
            has_result=True,
        ),
        token,
        result=StoredResult("pickle", pickle.dumps("stored before the crash")),
    )
    return run


def test_on_crashed_hook_runs_when_a_crashed_run_is_resumed(
    default_store: Store, journal: Journal
) -> None:
    CRASH_HOOK_CALLS.clear()
    run = simulate_crash(default_store)
    seen = Client().get_run(run.id)
    assert seen.state is StateType.CRASHED
    assert CRASH_HOOK_CALLS == []  # hooks run at the resume, not when someone looks

    assert legato.resume_flow_run(run.id) == "stored before the crash!"
    assert len(CRASH_HOOK_CALLS) == 1
    name, run_id, state_type, message = CRASH_HOOK_CALLS[0]
    assert (name, run_id, state_type) == ("crashable", run.id, StateType.CRASHED)
    assert "exited while the run was running" in message
    assert journal.counts() == {"after_crash": 1}  # before_crash replayed from the store
    final = default_store.get_flow_run(run.id)
    assert final is not None and final.state is StateType.COMPLETED


def test_resume_run_returns_state_and_runs_on_crashed_once(
    default_store: Store, journal: Journal
) -> None:
    CRASH_HOOK_CALLS.clear()
    run = simulate_crash(default_store)
    state = resume_run(run.id, store=default_store)
    assert state.is_completed() and state.result() == "stored before the crash!"
    with pytest.raises(RunStateError):
        resume_run(run.id, store=default_store)
    assert len(CRASH_HOOK_CALLS) == 1


def test_resume_with_input_for_a_failed_run_is_refused(
    default_store: Store, journal: Journal
) -> None:
    marker().touch()
    with pytest.raises(ConnectionError):
        etl(1)
    run = latest_run(default_store, "etl")
    marker().unlink()
    with pytest.raises(RunStateError, match="not paused: input only applies to a paused run"):
        legato.resume_flow_run(run.id, {"approved": True})
    assert default_store.get_flow_run(run.id).state is StateType.FAILED  # type: ignore[union-attr]
    assert journal.count("flow body") == 1  # nothing ran


def test_flow_retries_resume_gives_full_retries_again(
    default_store: Store, journal: Journal
) -> None:
    @flow(retries=1)
    def retried_flow() -> int:
        record("retried body")
        return load([1])

    marker().touch()
    with pytest.raises(ConnectionError):
        retried_flow()
    run = latest_run(default_store, "retried_flow")
    assert run.attempts == 2
    assert journal.count("retried body") == 2
    marker().unlink()
    assert legato.resume_flow_run(run.id, flow=retried_flow) == 1
    after = default_store.get_flow_run(run.id)
    assert after is not None and after.attempts == 3


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_flow_retries_make_retries_plus_one_attempts(default_store: Store, retries: int) -> None:
    bodies: list[int] = []

    @task
    def once() -> str:
        bodies.append(0)  # replayed on later attempts, so runs once
        return "x"

    @flow(retries=retries)
    def always_failing() -> None:
        once()
        bodies.append(1)
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        always_failing()
    assert bodies.count(1) == retries + 1
    assert bodies.count(0) == 1
    run = latest_run(default_store, "always_failing")
    assert run.attempts == retries + 1
    assert run.state is StateType.FAILED


SCRIPT = """
import legato
from legato import flow, task

print("module body executed")
FAIL = True


@task
def step() -> str:
    return "step"


@flow
def scripted() -> str:
    value = step()
    if FAIL:
        raise RuntimeError("flag still set")
    return value + " ok"


if __name__ == "__main__":
    try:
        scripted()
    except RuntimeError:
        pass
    from legato.client import Client

    run_id = Client().list_runs(limit=1)[0].id
    FAIL = False
    print(legato.resume_flow_run(run_id))
"""


def test_resume_inside_the_script_that_defines_the_flow(tmp_path: Path, legato_home: Path) -> None:
    import subprocess
    import sys

    from _engine_support import subprocess_env

    script = tmp_path / "script_flow.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=subprocess_env(legato_home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    # The running script's own flow (and its globals) resumes the run; the file is
    # not executed a second time as another module.
    assert proc.stdout.splitlines() == ["module body executed", "step ok"], proc.stderr
    assert proc.returncode == 0, proc.stderr


@flow(persist_result=False)
def unpersisted_child() -> int:
    record("unpersisted_child body")
    return 5


@flow
def parent_of_unpersisted() -> int:
    value = unpersisted_child()
    must_not_be_broken()
    return value + 1


def test_resume_parent_after_a_completed_child_without_stored_result(
    default_store: Store, journal: Journal
) -> None:
    marker().touch()
    with pytest.raises(RuntimeError):
        parent_of_unpersisted()
    parent = latest_run(default_store, "parent_of_unpersisted")
    marker().unlink()
    assert legato.resume_flow_run(parent.id) == 6


@task
def inner_step(x: int) -> int:
    record(f"inner_step {x}")
    return x


@task
def outer_step() -> int:
    total = inner_step(1) + inner_step(2)
    if marker().exists():
        raise RuntimeError("outer broken")
    return total


@flow
def nested_flow() -> int:
    return outer_step()


def test_nested_task_calls_replay_inside_a_rerun_outer_task(
    default_store: Store, journal: Journal
) -> None:
    marker().touch()
    with pytest.raises(RuntimeError, match="outer broken"):
        nested_flow()
    run = latest_run(default_store, "nested_flow")
    marker().unlink()
    assert legato.resume_flow_run(run.id) == 3
    assert journal.counts() == {"inner_step 1": 1, "inner_step 2": 1}
    keys = set(tasks_by_key(default_store, run.id))
    assert keys == {"outer_step[0]", "outer_step[0]/inner_step[0]", "outer_step[0]/inner_step[1]"}


@flow
def odd_parameters(tags: set[str], when: Any) -> str:
    must_not_be_broken()
    return f"{sorted(tags)} {type(when).__name__}"


def test_resume_restores_parameters_json_cannot_hold(default_store: Store) -> None:
    from datetime import datetime

    marker().touch()
    with pytest.raises(RuntimeError):
        odd_parameters({"b", "a"}, datetime(2026, 1, 2))
    run = latest_run(default_store, "odd_parameters")
    marker().unlink()
    assert legato.resume_flow_run(run.id) == "['a', 'b'] datetime"
