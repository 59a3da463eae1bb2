"""Tasks and flows that return a State end in that state, as Prefect documents
("return Completed(message=...)", "return Failed(message=...)")."""

from __future__ import annotations

import pytest

from legato import flow, task
from legato.client import Client
from legato.errors import FlowRunFailed, TaskCallError
from legato.states import Cancelled, Completed, Failed, Running, StateType
from legato.store.base import Store

pytestmark = pytest.mark.usefixtures("backend")


@flow
def says_done() -> object:
    return Completed(message="nothing new today")


@flow
def says_failed() -> object:
    return Failed(message="the input file was empty")


@flow
def says_cancelled() -> object:
    return Cancelled(message="not needed any more")


@flow
def says_running() -> object:
    return Running()


@flow
def completed_with_data() -> object:
    return Completed(message="fine", data={"rows": 3})


def test_a_flow_returning_completed_ends_completed_with_its_message(default_store: Store) -> None:
    state = says_done(return_state=True)
    assert state.is_completed() and state.message == "nothing new today"
    run = default_store.list_flow_runs(flow_name="says_done", limit=1)[0]
    assert run.state is StateType.COMPLETED and run.state_message == "nothing new today"
    assert completed_with_data() == {"rows": 3}
    data_run = default_store.list_flow_runs(flow_name="completed_with_data", limit=1)[0]
    assert Client(default_store).run_result(data_run.id) == {"rows": 3}


def test_a_flow_returning_failed_ends_failed_and_raises(default_store: Store) -> None:
    state = says_failed(return_state=True)
    assert state.is_failed() and state.message == "the input file was empty"
    with pytest.raises(FlowRunFailed, match="the input file was empty"):
        says_failed()
    run = default_store.list_flow_runs(flow_name="says_failed", limit=1)[0]
    assert run.state is StateType.FAILED and run.state_message == "the input file was empty"
    assert run.attempts == 1


def test_a_flow_returning_cancelled_ends_cancelled(default_store: Store) -> None:
    state = says_cancelled(return_state=True)
    assert state.is_cancelled()
    run = default_store.list_flow_runs(flow_name="says_cancelled", limit=1)[0]
    assert run.state is StateType.CANCELLED and run.state_message == "not needed any more"


def test_a_flow_returning_a_state_that_is_not_final_fails_saying_so(default_store: Store) -> None:
    state = says_running(return_state=True)
    assert state.is_failed()
    with pytest.raises(TaskCallError, match="returned a running state"):
        state.result()


calls = {"n": 0}


@task(retries=2)
def checks(x: int) -> object:
    calls["n"] += 1
    if x < 0:
        return Failed(message=f"{x} is negative")
    return Completed(message="checked", data=x * 10)


@flow
def checking(x: int) -> object:
    return checks(x)


@flow
def checking_with_state(x: int) -> object:
    state = checks(x, return_state=True)
    return "failed: " + (state.message or "") if state.is_failed() else state.result()


def test_a_task_returning_completed_returns_its_data(default_store: Store) -> None:
    assert checking(4) == 40
    run = default_store.list_flow_runs(flow_name="checking", limit=1)[0]
    [task_run] = default_store.list_task_runs(run.id)
    assert task_run.state is StateType.COMPLETED and task_run.has_result


def test_a_task_returning_failed_fails_without_retries(default_store: Store) -> None:
    calls["n"] = 0
    state = checking(-1, return_state=True)
    assert state.is_failed() and "-1 is negative" in (state.message or "")
    assert calls["n"] == 1  # the code's own verdict: no retry
    run = default_store.list_flow_runs(flow_name="checking", limit=1)[0]
    [task_run] = default_store.list_task_runs(run.id)
    assert task_run.state is StateType.FAILED
    assert task_run.error is not None and "-1 is negative" in task_run.error.message
    assert checking_with_state(-2) == "failed: -2 is negative"
