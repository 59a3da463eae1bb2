"""`RunInput`: the pydantic model a paused run waits for."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pydantic import BaseModel, ConfigDict


class RunInput(BaseModel):
    """Subclass this to describe the input a paused run needs::

        class Approval(RunInput):
            approved: bool
            reviewer: str = "unknown"

        answer = pause_flow_run(wait_for_input=Approval)

    Unknown fields are rejected, so a typo in the input is an error, not a no-op.
    """

    model_config = ConfigDict(extra="forbid")

    def __await__(self) -> Generator[Any, None, Any]:
        # ``await pause_flow_run(wait_for_input=Model)`` in async flows, as in Prefect;
        # the input is there already, so awaiting it returns it at once.
        yield from ()  # nothing to wait for
        return self


# A pause that waits for a plain value (``wait_for_input=str``) waits for one of
# these, whose ``value`` field holds it; importable by reference on resume.


class StrInput(RunInput):
    value: str


class IntInput(RunInput):
    value: int


class FloatInput(RunInput):
    value: float


class BoolInput(RunInput):
    value: bool


class ListInput(RunInput):
    value: list[Any]


class DictInput(RunInput):
    value: dict[str, Any]


WRAPPED_INPUTS: dict[type, type[RunInput]] = {
    str: StrInput,
    int: IntInput,
    float: FloatInput,
    bool: BoolInput,
    list: ListInput,
    dict: DictInput,
}
