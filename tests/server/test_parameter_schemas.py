"""The parameter check the server makes from a recorded schema agrees with the one
the flow makes from its signature, without the flow's code."""

from __future__ import annotations

import enum
from datetime import date
from typing import Any, Literal

import pytest

from legato import flow
from legato.client.parameter_schemas import check_parameters, schema_of_flow, with_defaults
from legato.errors import ParameterValidationError


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@flow
def typed(
    n: int,
    day: date,
    mode: Literal["a", "b"] = "a",
    tags: list[str] | None = None,
    ratio: float = 1.0,
    color: Color = Color.RED,
    flag: bool = False,
    extra: dict[str, int] | None = None,
) -> None:
    pass


@flow
def open_ended(n: int, **rest: Any) -> None:
    pass


@flow(validate_parameters=False)
def unchecked(n: int) -> None:
    pass


CASES = [
    {"n": 1, "day": "2026-01-01"},
    {"n": "5", "day": "2026-01-01"},  # lax, as the flow reads it
    {"n": 1.0, "day": "2026-01-01"},
    {"n": 1.5, "day": "2026-01-01"},
    {"n": "many", "day": "2026-01-01"},
    {"n": True, "day": "2026-01-01"},
    {"n": 1, "day": "not a day"},
    {"n": 1, "day": "2026-01-01", "mode": "c"},
    {"n": 1, "day": "2026-01-01", "tags": ["x", "y"]},
    {"n": 1, "day": "2026-01-01", "tags": [1]},
    {"n": 1, "day": "2026-01-01", "tags": None},
    {"n": 1, "day": "2026-01-01", "ratio": "x"},
    {"n": 1, "day": "2026-01-01", "color": "blue"},
    {"n": 1, "day": "2026-01-01", "color": "green"},
    {"n": 1, "day": "2026-01-01", "flag": "yes"},
    {"n": 1, "day": "2026-01-01", "flag": "maybe"},
    {"n": 1, "day": "2026-01-01", "extra": {"a": 1}},
    {"n": 1, "day": "2026-01-01", "extra": {"a": "b"}},
    {"n": 1, "day": "2026-01-01", "unknown": 1},
    {"day": "2026-01-01"},
]


def outcome(check: Any) -> bool:
    try:
        check()
    except ParameterValidationError:
        return False
    return True


@pytest.mark.parametrize("params", CASES)
def test_the_recorded_schema_accepts_what_the_flow_accepts(params: dict[str, Any]) -> None:
    schema = schema_of_flow(typed)
    by_schema = outcome(lambda: check_parameters(schema, params, flow_name="typed"))
    by_flow = outcome(lambda: typed.parameter_model.validate(params))
    assert by_schema == by_flow, params


def test_extra_names_follow_the_signature_and_unvalidated_flows_check_names_only() -> None:
    check_parameters(schema_of_flow(open_ended), {"n": 1, "anything": 2}, flow_name="o")
    with pytest.raises(ParameterValidationError, match="'n' is required"):
        check_parameters(schema_of_flow(open_ended), {"anything": 2}, flow_name="o")
    check_parameters(schema_of_flow(unchecked), {"n": "not a number"}, flow_name="u")
    with pytest.raises(ParameterValidationError, match="unknown parameter 'm'"):
        check_parameters(schema_of_flow(unchecked), {"n": 1, "m": 1}, flow_name="u")
    check_parameters(None, {"whatever": object()}, flow_name="none")  # the worker checks


def test_defaults_fill_the_form_and_are_no_longer_required() -> None:
    schema = schema_of_flow(typed)
    filled = with_defaults(schema, {"n": 3})
    assert filled["properties"]["n"]["default"] == 3 and "n" not in filled["required"]
    assert "default" not in schema["properties"]["n"]  # the record itself is untouched
    check_parameters(schema, {"day": "2026-01-01"}, flow_name="typed", partial=True)
