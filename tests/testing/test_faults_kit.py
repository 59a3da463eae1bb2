"""legato.testing fault injection: crash_at, fail_task, store_outage, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _kit_flows import fetch_all, fetch_all_async, nested, pay, pay_once

from legato.engine import faults
from legato.errors import ConfigurationError, FlowCrashed, SimulatedCrash
from legato.states import StateType
from legato.store.base import Store
from legato.testing import crash_at, effects, fail_task, resume, run_flow, store_outage

FLOWS = Path(__file__).with_name("_kit_flows.py")


def charges() -> list[str | None]:
    return [e.call_key for e in effects.read() if e.name == "charge"]


def test_crash_before_commit_leaves_the_call_unrecorded_and_resume_runs_it_again(
    legato_store: Store,
) -> None:
    with crash_at("charge[1]", when="before_commit") as spec:
        crashed = run_flow(pay, n=3)
    assert spec == "kill-before=charge[1]"
    assert faults.ACTIVE is None  # the plan ends with the block
    assert crashed.state.type is StateType.CRASHED and crashed.result is None
    assert [(t.call_key, t.state) for t in crashed.task_runs] == [
        ("charge[0]", StateType.COMPLETED)
    ]
    assert charges() == ["charge[0]", "charge[1]"]  # it ran; its record was never written
    with pytest.raises(FlowCrashed, match=r"legato\.testing\.resume"):
        crashed.raise_for_state()

    resumed = resume(crashed)
    assert resumed.run_id == crashed.run_id
    assert resumed.state.type is StateType.COMPLETED and resumed.result == 30
    # charge[0] replays; charge[1] runs a second time (it was not recorded).
    assert charges() == ["charge[0]", "charge[1]", "charge[1]", "charge[2]"]


def test_crash_after_commit_keeps_the_record_and_resume_replays_it(legato_store: Store) -> None:
    with crash_at("pay:charge[1]", when="after_commit"):
        crashed = run_flow(pay, n=3)
    assert crashed.state.type is StateType.CRASHED
    assert [t.call_key for t in crashed.task_runs] == ["charge[0]", "charge[1]"]
    resumed = resume(crashed.run_id)
    assert resumed.result == 30
    assert charges() == ["charge[0]", "charge[1]", "charge[2]"]  # each exactly once


def test_a_crash_happens_once_and_ends_the_runs_started_before_it(legato_store: Store) -> None:
    with crash_at("charge[0]"):
        first = run_flow(nested, n=2)  # crashes in the subflow pay, and with it nested
        second = run_flow(nested, n=2)  # a later run in the same block is not crashed
    assert first.state.type is StateType.CRASHED
    assert second.state.type is StateType.COMPLETED and second.result == 20
    assert resume(first).result == 20


def test_simulated_crash_is_not_an_exception_user_code_would_swallow() -> None:
    assert not issubclass(SimulatedCrash, Exception)


def test_fail_task_fails_the_first_attempts_then_lets_the_call_run(legato_store: Store) -> None:
    with fail_task("fetch[1]", TimeoutError("slow API"), times=2):
        run = run_flow(fetch_all, n=3)
    assert run.result == [0, 1, 2]
    assert run.task_run("fetch[1]").attempts == 3  # two planned failures, then it ran
    assert run.task_run("fetch[0]").attempts == 1
    assert any("slow API" in m for m in run.messages)

    with fail_task("fetch_all:fetch[2]", TimeoutError("down"), times=3):
        failed = run_flow(fetch_all, n=3)  # retries=2: three attempts, all fail
    assert failed.state.type is StateType.FAILED and failed.result is None
    assert failed.task_run("fetch[2]").state is StateType.FAILED
    with pytest.raises(TimeoutError, match="down"):
        failed.raise_for_state()


def test_fail_task_on_an_async_task(legato_store: Store) -> None:
    with fail_task("fetch_async[1]", OSError("reset"), times=1):
        run = run_flow(fetch_all_async, n=2)
    assert run.result == [0, 1]
    assert run.task_run("fetch_async[1]").attempts == 2
    with fail_task("fetch_async[0]", OSError("reset"), times=2):
        failed = run_flow(fetch_all_async, n=2)
    assert failed.state.type is StateType.FAILED
    with pytest.raises(OSError, match="reset"):
        failed.raise_for_state()


def test_kit_blocks_nest_and_combine(legato_store: Store) -> None:
    with fail_task("fetch[0]", ValueError("x"), times=1), crash_at("fetch[2]"):
        crashed = run_flow(fetch_all, n=3)
    assert crashed.state.type is StateType.CRASHED
    assert crashed.task_run("fetch[0]").attempts == 2
    assert resume(crashed).result == [0, 1, 2]


def test_store_outage_at_a_call_crashes_the_run_and_resume_completes_it(
    legato_store: Store,
) -> None:
    with store_outage(calls=5, at="charge_once[1]"):
        crashed = run_flow(pay_once, n=3)
    assert crashed.state.type is StateType.CRASHED
    assert "could not be reached" in (crashed.state.message or "")
    resumed = resume(crashed)
    assert resumed.result == 30
    assert sorted(c for c in charges() if c) == [
        "charge_once[0]",
        "charge_once[1]",
        "charge_once[2]",
    ]


def test_a_store_outage_at_the_start_stops_the_call(legato_store: Store) -> None:
    from legato.errors import StoreUnavailableError

    with store_outage(calls=1), pytest.raises(StoreUnavailableError):
        run_flow(pay, n=1)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: crash_at("charge[0]", when="during"), "when='during'"),  # type: ignore[arg-type]
        (lambda: crash_at(" charge[0]"), "not a call key"),
        (lambda: crash_at("#0"), "not understood"),
        (lambda: fail_task("fetch[0]", ValueError("x"), times=0), "times=0"),
        (lambda: fail_task("fetch[0]", ValueError, times=1), "not an exception instance"),  # type: ignore[arg-type]
        (lambda: store_outage(calls=0), "calls=0"),
    ],
)
def test_bad_arguments_are_configuration_errors(make: object, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match), make():  # type: ignore[operator]
        pass


def test_process_true_kills_for_real_in_a_subprocess(legato_store: Store) -> None:
    """The documented real-kill path: LEGATO_FAULTS in a child, then resume."""
    with crash_at("charge[1]", process=True) as spec:
        assert faults.ACTIVE is not None and not faults.ACTIVE.plan.in_process
    env = dict(os.environ, LEGATO_FAULTS=spec, LEGATO_LOG_TO_CONSOLE="0")
    child = subprocess.run(
        [sys.executable, "-m", "legato", "run", f"{FLOWS}:pay", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr
    run = legato_store.list_flow_runs(limit=1)[0]
    assert [t.call_key for t in legato_store.list_task_runs(run.id)] == ["charge[0]"]
    resumed = resume(run.id)
    assert resumed.state.type is StateType.COMPLETED and resumed.result == 30
