"""Pause forms Prefect documents: ``wait_for_input=str`` (and other plain types,
wrapped as ``{"value": ...}``), and ``await pause_flow_run(...)`` in async flows."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError, model_validator

import legato
from legato import RunInput, flow, pause_flow_run
from legato.errors import ConfigurationError, InvalidRunInputError
from legato.states import StateType
from legato.store.base import Store


@flow
def asks_a_name() -> str:
    name = pause_flow_run(wait_for_input=str)
    return f"hello {name}"


@flow
def asks_a_number() -> int:
    return pause_flow_run(wait_for_input=int) * 2


class Approval(RunInput):
    approved: bool


@flow
async def awaits_everything() -> list[object]:
    await pause_flow_run()  # no input
    note = await pause_flow_run(wait_for_input=str)
    approval = await pause_flow_run(wait_for_input=Approval)
    return [note, approval.approved]


@flow
def asks_a_set() -> object:
    return pause_flow_run(wait_for_input=set)


def latest(store: Store, name: str) -> str:
    return store.list_flow_runs(flow_name=name, limit=1)[0].id


def test_a_plain_type_is_asked_for_as_a_value(default_store: Store) -> None:
    state = asks_a_name(return_state=True)
    assert state.is_paused()
    assert """--input '{"value": <a string>}'""" in (state.message or "")
    run_id = latest(default_store, "asks_a_name")
    pause = default_store.get_flow_run(run_id).pause  # type: ignore[union-attr]
    assert pause is not None and pause.input_schema is not None
    assert pause.input_schema["properties"]["value"]["type"] == "string"
    assert legato.resume_flow_run(run_id, {"value": "Ada"}) == "hello Ada"


def test_a_plain_value_is_validated_and_the_run_stays_paused(default_store: Store) -> None:
    assert asks_a_number(return_state=True).is_paused()
    run_id = latest(default_store, "asks_a_number")
    with pytest.raises(InvalidRunInputError, match="value"):
        legato.resume_flow_run(run_id, {"value": "many"})
    assert default_store.get_flow_run(run_id).state is StateType.PAUSED  # type: ignore[union-attr]
    assert legato.resume_flow_run(run_id, {"value": 21}) == 42


def test_pauses_are_awaited_in_async_flows(default_store: Store) -> None:
    assert asyncio.run(awaits_everything(return_state=True)).is_paused()
    run_id = latest(default_store, "awaits_everything")
    with pytest.raises(legato.errors.FlowPaused):
        legato.resume_flow_run(run_id)  # the first pause took no input; the next one waits
    with pytest.raises(legato.errors.FlowPaused):
        legato.resume_flow_run(run_id, {"value": "looks fine"})
    assert legato.resume_flow_run(run_id, {"approved": True}) == ["looks fine", True]


def test_a_type_that_cannot_be_asked_for_is_refused(default_store: Store) -> None:
    state = asks_a_set(return_state=True)
    assert state.is_failed()
    with pytest.raises(ConfigurationError, match="str, int, float, bool, list, dict"):
        state.result()


class ShirtOrder(RunInput):
    size: str
    color: str

    @model_validator(mode="after")
    def green_only_in_big_sizes(self) -> ShirtOrder:
        if self.color == "green" and self.size == "small":
            raise ValueError("green comes in medium and large only")
        return self


@flow
def shirt_order() -> str:
    # Prefect's documented validator loop: pause again until the input validates.
    order = None
    while order is None:
        try:
            order = pause_flow_run(wait_for_input=ShirtOrder)
        except ValidationError:
            continue
    return f"{order.size} {order.color}"


def test_the_validator_loop_keeps_the_run_paused_until_the_input_validates(
    default_store: Store,
) -> None:
    """Prefect re-pauses inside the flow when the input fails the model's own
    validator; legato validates at resume, so bad input never reaches the flow: the
    run stays paused, the loop's body runs once, and good input completes it."""
    assert shirt_order(return_state=True).is_paused()
    run_id = latest(default_store, "shirt_order")
    with pytest.raises(InvalidRunInputError, match="green comes in medium and large only"):
        legato.resume_flow_run(run_id, {"size": "small", "color": "green"})
    assert default_store.get_flow_run(run_id).state is StateType.PAUSED  # type: ignore[union-attr]
    assert legato.resume_flow_run(run_id, {"size": "large", "color": "green"}) == "large green"
