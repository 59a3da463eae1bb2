"""Human in the loop: pause_flow_run, input models, resume with (in)valid input, timeouts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from _engine_support import Journal, record, wait_until

import legato
from legato import FlowPaused, RunInput, StateType, flow, pause_flow_run, task
from legato.client import Client
from legato.errors import (
    ConfigurationError,
    InvalidRunInputError,
    RunStateError,
    TaskCallError,
)
from legato.records import FlowRun
from legato.store.base import Store


class Approval(RunInput):
    approved: bool
    note: str = ""


def paused_run_id(call: Any, *args: Any) -> tuple[str, FlowPaused]:
    with pytest.raises(FlowPaused) as info:
        call(*args)
    return info.value.run_id, info.value


def stored(store: Store, run_id: str) -> FlowRun:
    run = store.get_flow_run(run_id)
    assert run is not None
    return run


@task
def prepare(amount: int) -> int:
    record("prepare")
    return amount * 2


@flow
def approval_flow(amount: int) -> dict[str, Any]:
    prepared = prepare(amount)
    answer = pause_flow_run(wait_for_input=Approval)
    record("after pause")
    return {
        "amount": prepared,
        "approved": answer.approved,
        "note": answer.note,
        "type": type(answer).__name__,
    }


def test_pause_with_input_model_suspends_the_run(default_store: Store, journal: Journal) -> None:
    run_id, paused = paused_run_id(approval_flow, 5)
    assert paused.key == "pause[0]"
    assert paused.input_model == "Approval"
    message = str(paused)
    assert run_id in message
    assert f"legato resume {run_id} --input" in message
    run = stored(default_store, run_id)
    assert run.state is StateType.PAUSED
    assert run.pause is not None
    assert run.pause.key == "pause[0]"
    assert run.pause.input_model is not None and run.pause.input_model.endswith(":Approval")
    assert run.pause.input_schema is not None
    assert set(run.pause.input_schema["properties"]) == {"approved", "note"}
    assert run.pause.input_schema["required"] == ["approved"]
    assert run.owner is None  # the process is free: no owner, nothing for liveness to check
    assert journal.counts() == {"prepare": 1}


def test_resume_with_valid_input_continues_with_the_model(
    default_store: Store, journal: Journal
) -> None:
    run_id, _ = paused_run_id(approval_flow, 5)
    result = legato.resume_flow_run(run_id, {"approved": True, "note": "fine"})
    assert result == {"amount": 10, "approved": True, "note": "fine", "type": "Approval"}
    run = stored(default_store, run_id)
    assert run.state is StateType.COMPLETED
    assert run.pause is None
    assert journal.counts() == {"prepare": 1, "after pause": 1}


@pytest.mark.parametrize(
    ("bad_input", "field"),
    [
        ({"approved": "maybe"}, "'approved'"),
        ({"note": "no decision"}, "'approved'"),
        ({"approved": True, "aproved": True}, "'aproved'"),  # typo: extra fields are refused
    ],
)
def test_invalid_input_keeps_the_run_paused(
    default_store: Store, journal: Journal, bad_input: dict[str, Any], field: str
) -> None:
    run_id, _ = paused_run_id(approval_flow, 1)
    with pytest.raises(InvalidRunInputError) as info:
        legato.resume_flow_run(run_id, bad_input)
    message = str(info.value)
    assert field in message
    assert "Approval" in message and run_id in message
    assert "stays paused" in message
    run = stored(default_store, run_id)
    assert run.state is StateType.PAUSED
    assert run.attempts == 1  # nothing ran
    assert journal.counts() == {"prepare": 1}
    # It can then be resumed with valid input.
    assert legato.resume_flow_run(run_id, {"approved": False})["approved"] is False
    assert journal.counts() == {"prepare": 1, "after pause": 1}


def test_missing_input_when_a_model_is_required(default_store: Store, journal: Journal) -> None:
    run_id, _ = paused_run_id(approval_flow, 1)
    expected = r"input is required \(required fields: approved; optional: note\)"
    with pytest.raises(InvalidRunInputError, match=expected):
        legato.resume_flow_run(run_id)
    assert stored(default_store, run_id).state is StateType.PAUSED


@flow
def plain_pause() -> str:
    record("before")
    got = pause_flow_run()
    record("after")
    return f"resumed with {got!r}"


def test_pause_without_input_model(default_store: Store, journal: Journal) -> None:
    run_id, paused = paused_run_id(plain_pause)
    assert paused.input_model is None
    assert str(paused).endswith(f"legato resume {run_id}")
    run = stored(default_store, run_id)
    assert run.pause is not None and run.pause.input_model is None
    assert run.pause.input_schema is None
    with pytest.raises(InvalidRunInputError, match="this pause does not take input"):
        legato.resume_flow_run(run_id, {"x": 1})
    assert stored(default_store, run_id).state is StateType.PAUSED
    assert legato.resume_flow_run(run_id) == "resumed with None"
    assert journal.counts() == {"before": 2, "after": 1}  # the flow body re-ran


def test_input_for_a_run_that_is_not_paused_is_refused(default_store: Store) -> None:
    @flow
    def fails() -> None:
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        fails()
    run = default_store.list_flow_runs()[0]
    with pytest.raises(RunStateError, match="not paused"):
        legato.resume_flow_run(run.id, {"approved": True}, flow=fails)


@flow
def two_stage() -> list[bool]:
    first = pause_flow_run(wait_for_input=Approval)
    prepare(1)
    second = pause_flow_run(wait_for_input=Approval)
    prepare(2)
    return [first.approved, second.approved]


def test_two_pauses_in_one_flow(default_store: Store, journal: Journal) -> None:
    run_id, first = paused_run_id(two_stage)
    assert first.key == "pause[0]"
    with pytest.raises(FlowPaused) as info:
        legato.resume_flow_run(run_id, {"approved": True})
    assert info.value.key == "pause[1]"
    assert info.value.run_id == run_id
    run = stored(default_store, run_id)
    assert run.state is StateType.PAUSED and run.pause is not None
    assert run.pause.key == "pause[1]"
    assert legato.resume_flow_run(run_id, {"approved": False}) == [True, False]
    assert journal.counts() == {"prepare": 2}
    assert stored(default_store, run_id).attempts == 3


@flow
def keyed() -> str:
    answer = pause_flow_run(wait_for_input=Approval, key="finance-approval")
    return answer.note


def test_custom_pause_key(default_store: Store) -> None:
    run_id, paused = paused_run_id(keyed)
    assert paused.key == "finance-approval"
    assert "'finance-approval'" in str(paused)
    pause = stored(default_store, run_id).pause
    assert pause is not None and pause.key == "finance-approval"
    assert legato.resume_flow_run(run_id, {"approved": True, "note": "ok"}) == "ok"


@flow
def same_key_twice() -> str:
    pause_flow_run(key="approval")
    record("between")
    pause_flow_run(key="approval")
    record("after both")
    return "done"


def test_reusing_a_pause_key_does_not_skip_the_second_pause(
    default_store: Store, journal: Journal
) -> None:
    run_id, _ = paused_run_id(same_key_twice)
    try:
        legato.resume_flow_run(run_id)
    except (FlowPaused, legato.LegatoError):
        pass
    assert journal.count("after both") == 0


@flow
def with_timeout() -> str:
    pause_flow_run(wait_for_input=Approval, timeout=0.2)
    return "approved in time"


def test_pause_timeout_fails_the_run(default_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id, _ = paused_run_id(with_timeout)
    pause = stored(default_store, run_id).pause
    assert pause is not None and pause.timeout_at is not None
    timeout_at = pause.timeout_at
    # Not yet: read as of a moment before the timeout, however long the setup took.
    with monkeypatch.context() as clock:
        client = Client()
        before = timeout_at - timedelta(milliseconds=1)
        clock.setattr(client.store, "clock", lambda: before)  # the store's clock judges
        assert client.get_run(run_id).state is StateType.PAUSED
    wait_until(lambda: default_store.clock() > timeout_at, what="the pause timeout to pass")
    run = Client().get_run(run_id)
    assert run.state is StateType.FAILED
    assert run.error is not None and run.error.type == "PausedRunTimeoutError"
    assert "pause timeout" in (run.state_message or "")
    # The failure was written, not just computed for this read.
    assert stored(default_store, run_id).state is StateType.FAILED
    # Late approval is refused: the pause is over.
    with pytest.raises(RunStateError):
        legato.resume_flow_run(run_id, {"approved": True})
    assert stored(default_store, run_id).state is StateType.FAILED


def test_pause_timeout_seen_by_list_runs(default_store: Store) -> None:
    run_id, _ = paused_run_id(with_timeout)
    pause = stored(default_store, run_id).pause
    assert pause is not None and pause.timeout_at is not None
    timeout_at = pause.timeout_at
    wait_until(lambda: default_store.clock() > timeout_at, what="the pause timeout to pass")
    runs = Client().list_runs(states=[StateType.FAILED])
    assert [r.id for r in runs] == [run_id]


class ChildInput(RunInput):
    value: int


@task
def child_work(x: int) -> int:
    record(f"child_work {x}")
    return x


@flow
def pausing_child(x: int) -> int:
    before = child_work(x)
    got = pause_flow_run(wait_for_input=ChildInput)
    return before + got.value


@flow
def pausing_parent() -> int:
    record("parent body")
    a = child_work(1)
    b = pausing_child(10)
    return a + b


def test_pause_inside_a_subflow_pauses_the_parent(default_store: Store, journal: Journal) -> None:
    parent_id, paused = paused_run_id(pausing_parent)
    parent = stored(default_store, parent_id)
    assert parent.state is StateType.PAUSED
    (child,) = default_store.list_flow_runs(parent_run_id=parent_id)
    assert child.state is StateType.PAUSED
    assert child.pause is not None and child.pause.key == "pause[0]"
    assert parent.pause is not None
    assert parent.pause.input_model is not None
    assert parent.pause.input_model.endswith(":ChildInput")
    assert paused.input_model == "ChildInput"
    assert child.id in paused.key  # the parent's pause points at the child's

    with pytest.raises(InvalidRunInputError, match="'value'"):
        legato.resume_flow_run(parent_id, {"value": "ten"})
    assert stored(default_store, parent_id).state is StateType.PAUSED
    assert stored(default_store, child.id).state is StateType.PAUSED

    assert legato.resume_flow_run(parent_id, {"value": 5}) == 1 + 10 + 5
    assert stored(default_store, parent_id).state is StateType.COMPLETED
    assert stored(default_store, child.id).state is StateType.COMPLETED
    assert len(default_store.list_flow_runs(parent_run_id=parent_id)) == 1  # same child
    assert journal.counts() == {"parent body": 2, "child_work 1": 1, "child_work 10": 1}


def test_pause_inside_a_task_is_an_error(default_store: Store) -> None:
    @task
    def sneaky() -> None:
        pause_flow_run()

    @flow
    def f() -> None:
        sneaky()

    with pytest.raises(TaskCallError, match="inside task 'sneaky'; pause in the flow body"):
        f()
    run = default_store.list_flow_runs()[0]
    assert run.state is StateType.FAILED


def test_pause_outside_a_flow_and_bad_arguments() -> None:
    with pytest.raises(TaskCallError, match="inside a @flow"):
        pause_flow_run()

    @flow
    def bad_model() -> None:
        pause_flow_run(wait_for_input=set)  # type: ignore[arg-type]

    with pytest.raises(ConfigurationError, match=r"subclass of legato\.RunInput"):
        bad_model()

    @flow
    def bad_timeout() -> None:
        pause_flow_run(timeout=0)

    with pytest.raises(ConfigurationError, match="must be > 0"):
        bad_timeout()


def test_cancel_a_paused_run(default_store: Store) -> None:
    run_id, _ = paused_run_id(approval_flow, 1)
    after = Client().cancel_run(run_id[:10])
    assert after.state is StateType.CANCELLED
    assert stored(default_store, run_id).state is StateType.CANCELLED
    with pytest.raises(RunStateError):
        legato.resume_flow_run(run_id, {"approved": True})


@flow
async def async_approval() -> bool:
    await asyncio.sleep(0)
    answer = pause_flow_run(wait_for_input=Approval)
    return answer.approved


def test_async_flow_pause_and_resume(default_store: Store) -> None:
    with pytest.raises(FlowPaused) as info:
        asyncio.run(async_approval())
    assert legato.resume_flow_run(info.value.run_id, {"approved": True}) is True


def test_return_state_of_a_paused_flow(default_store: Store) -> None:
    state = plain_pause(return_state=True)
    assert state.is_paused()
    with pytest.raises(FlowPaused):
        state.result()


@flow
def pausing_leaf() -> int:
    pause_flow_run()
    return 1


@flow
def parent_of_pausing_leaf() -> int:
    return pausing_leaf()


def test_cancelling_a_paused_parent_cancels_its_paused_child(default_store: Store) -> None:
    parent_id, _ = paused_run_id(parent_of_pausing_leaf)
    (child,) = default_store.list_flow_runs(parent_run_id=parent_id)
    assert child.state is StateType.PAUSED
    assert Client().cancel_run(parent_id).state is StateType.CANCELLED
    assert stored(default_store, child.id).state is StateType.CANCELLED


@flow
def described_pause() -> bool:
    return pause_flow_run(wait_for_input=Approval, description="Ship 1.4.0?").approved


@flow
def described_plain_pause() -> str:
    pause_flow_run(description="Check the dashboards, then resume")
    return "resumed"


def test_a_pause_description_is_stored_with_the_input_schema(default_store: Store) -> None:
    run_id, _ = paused_run_id(described_pause)
    pause = stored(default_store, run_id).pause
    assert pause is not None and pause.input_schema is not None
    assert pause.input_schema["description"] == "Ship 1.4.0?"
    assert set(pause.input_schema["properties"]) == {"approved", "note"}
    assert legato.resume_flow_run(run_id, {"approved": True}) is True

    run_id, _ = paused_run_id(described_plain_pause)
    pause = stored(default_store, run_id).pause
    assert pause is not None and pause.input_model is None
    assert pause.input_schema == {"description": "Check the dashboards, then resume"}
    assert legato.resume_flow_run(run_id) == "resumed"
