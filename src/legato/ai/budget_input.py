"""The input a run paused for its model budget waits for."""

from __future__ import annotations

from pydantic import Field

from legato.input import RunInput


class BudgetIncrease(RunInput):
    """The run's new model budget: dollars and/or tokens (each replaces the old limit)."""

    usd: float | None = Field(default=None, ge=0, description="new budget in USD")
    tokens: int | None = Field(default=None, ge=0, description="new budget in tokens")
