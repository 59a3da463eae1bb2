"""`legato.variables.Variable`: Prefect 3's documented calls, inside and outside flows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from legato import flow, task
from legato.errors import InvalidVariableError, LegatoError, VariableExistsError
from legato.variables import Variable


@pytest.mark.usefixtures("backend")
def test_set_get_overwrite_and_unset_as_prefect_documents() -> None:
    assert Variable.get("answer") is None
    assert Variable.get("answer", default=42) == 42
    stored = Variable.set("answer", 42)
    assert stored == Variable(name="answer", value=42, tags=())
    assert Variable.get("answer") == 42
    with pytest.raises(VariableExistsError, match="overwrite=True") as raised:
        Variable.set("answer", 43)
    assert isinstance(raised.value, LegatoError)
    assert Variable.get("answer") == 42
    Variable.set("answer", {"n": 43, "ok": True, "xs": [1.5, None, "s"]}, overwrite=True)
    assert Variable.get("answer") == {"n": 43, "ok": True, "xs": [1.5, None, "s"]}
    assert Variable.set(name="crew", value=["a"], tags=["hi", "there"]).tags == ("hi", "there")
    assert Variable.unset("answer") is True
    assert Variable.unset("answer") is False
    assert Variable.get("answer", default="gone") == "gone"


@pytest.mark.usefixtures("backend")
def test_flows_and_tasks_read_and_write_variables() -> None:
    @task
    def bump() -> int:
        count: int = Variable.get("count", default=0) + 1
        Variable.set("count", count, overwrite=True)
        return count

    @flow
    def mission() -> tuple[list[str], int, int]:
        crew = Variable.get("crew_members", default=["Backup1", "Backup2"])
        return crew, bump(), bump()

    assert mission() == (["Backup1", "Backup2"], 1, 2)
    Variable.set("crew_members", ["Zaphod", "Arthur", "Trillian"])
    assert mission() == (["Zaphod", "Arthur", "Trillian"], 3, 4)
    assert Variable.get("count") == 4


def test_async_code_awaits_the_same_calls() -> None:
    @flow
    async def mission() -> Any:
        await Variable.set("answer", 42)
        first = await Variable.get("answer")
        await Variable.aset("answer", 43, overwrite=True)
        second = await Variable.aget("answer")
        gone = await Variable.unset("answer")
        return first, second, gone, await Variable.aget("answer", default="none")

    assert asyncio.run(mission()) == (42, 43, True, "none")

    # _sync=True makes the plain call even where an event loop runs
    async def plain() -> Any:
        Variable.set("x", 1, _sync=True)
        return Variable.get("x", _sync=True)

    assert asyncio.run(plain()) == 1


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Answer", "invalid variable name 'Answer'"),
        ("has space", "invalid variable name"),
        ("dotted.name", "invalid variable name"),
        ("", "invalid variable name ''"),
        ("x" * 256, "1 to 255 lowercase letters"),
    ],
)
def test_names_are_lowercase_letters_digits_underscores_and_dashes(name: str, problem: str) -> None:
    with pytest.raises(InvalidVariableError, match=problem):
        Variable.set(name, 1)
    with pytest.raises(InvalidVariableError, match=problem):
        Variable.get(name)
    Variable.set("ok_name-2", 1)  # the allowed characters


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({1, 2}, r"the value is a set, which a variable cannot hold"),
        ({"a": [object()]}, r"the value\['a'\]\[0\] is a object"),
        ({1: "x"}, "keys must be str"),
        (float("nan"), "JSON cannot hold"),
        ([float("inf")], "JSON cannot hold"),
        ("x" * 5000, "5002 characters as JSON, more than the 5000"),
    ],
)
def test_values_must_be_json_and_bounded(value: object, problem: str) -> None:
    with pytest.raises(InvalidVariableError, match=problem):
        Variable.set("bad", value)
    assert Variable.get("bad", default="unset") == "unset"


def test_tags_must_be_a_list_of_strings() -> None:
    with pytest.raises(InvalidVariableError, match="not one str"):
        Variable.set("tagged", 1, tags="prod")
    with pytest.raises(InvalidVariableError, match="is not a str"):
        Variable.set("tagged", 1, tags=[""])
