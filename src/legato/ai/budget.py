"""Model budgets: ``@flow(llm_budget=Budget(usd=5, tokens=2_000_000, on_exceed="pause"))``.

The budget is checked before each model call made by the flow run. What counts is
the spend this execution has seen, call by call, replayed calls included: a
resumed run adds up the same recorded answers in the same order, so a check that
passed before passes again, and the run stops at the same place. A breach
either fails the call (`LLMBudgetExceeded`) or pauses the run at
``llm-budget[n]`` waiting for a `BudgetIncrease` input (``legato resume RUN
--input '{"usd": 10}'``): the answer is the new budget, and a later resume finds
it again at the same pause point.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from legato._llm_records import LLMUsage
from legato.errors import ConfigurationError, LLMBudgetExceeded


@dataclass(frozen=True)
class Budget:
    """At most ``usd`` dollars and ``tokens`` tokens (input + output) of model calls per
    flow run; ``on_exceed`` is "fail" or "pause"."""

    usd: float | None = None
    tokens: int | None = None
    on_exceed: Literal["fail", "pause"] = "fail"

    def __post_init__(self) -> None:
        if self.usd is None and self.tokens is None:
            raise ConfigurationError("Budget needs usd= or tokens= (or both)")
        if self.usd is not None and (
            not isinstance(self.usd, (int, float)) or isinstance(self.usd, bool) or self.usd < 0
        ):
            raise ConfigurationError(f"Budget usd must be a number >= 0, got {self.usd!r}")
        if self.tokens is not None and (
            not isinstance(self.tokens, int) or isinstance(self.tokens, bool) or self.tokens < 0
        ):
            raise ConfigurationError(
                f"Budget tokens must be a whole number >= 0, got {self.tokens!r}"
            )
        if self.on_exceed not in ("fail", "pause"):
            raise ConfigurationError(
                f"Budget on_exceed must be 'fail' or 'pause', got {self.on_exceed!r}"
            )


def check_budget(value: Any, where: str) -> Budget:
    if not isinstance(value, Budget):
        raise ConfigurationError(
            f"{where}: llm_budget must be a legato.ai.Budget(usd=..., tokens=...), got {value!r}"
        )
    return value


@dataclass
class Spend:
    """What one execution of a flow run has spent on model calls, and its raised limits."""

    usd: float = 0.0
    usage: LLMUsage = field(default_factory=LLMUsage)
    raised_usd: float | None = None
    raised_tokens: int | None = None
    pauses: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, usage: LLMUsage, cost: float | None) -> None:
        with self.lock:
            self.usage = self.usage + usage
            self.usd += cost or 0.0

    def breach(self, budget: Budget) -> str | None:
        """What is exceeded, or None when the next call may go."""
        limit_usd = self.raised_usd if self.raised_usd is not None else budget.usd
        limit_tokens = self.raised_tokens if self.raised_tokens is not None else budget.tokens
        if limit_usd is not None and self.usd >= limit_usd:
            return f"${self.usd:.4f} spent of a ${limit_usd:g} budget"
        if limit_tokens is not None and self.usage.total_tokens >= limit_tokens:
            return f"{self.usage.total_tokens} tokens used of a {limit_tokens}-token budget"
        return None


def spend_of(flow_ctx: Any) -> Spend:
    spend: Spend | None = flow_ctx.llm_spend
    if spend is None:
        with flow_ctx.lock:
            spend = flow_ctx.llm_spend
            if spend is None:
                spend = flow_ctx.llm_spend = Spend()
    return spend


def enforce(flow_ctx: Any, in_task: bool) -> None:
    """Before a model call: fail or pause the run when its budget is spent."""
    budget: Budget | None = getattr(flow_ctx.flow, "llm_budget", None)
    if budget is None:
        return
    spend = spend_of(flow_ctx)
    while (what := spend.breach(budget)) is not None:
        run_id = flow_ctx.run.id
        if budget.on_exceed == "fail" or in_task:
            where = " (inside a task, where a run cannot pause)" if in_task else ""
            raise LLMBudgetExceeded(
                f"flow run {run_id}: model budget exceeded before the next call{where}: {what}; "
                "raise the flow's llm_budget (or use on_exceed='pause' to decide per run)"
            )
        from legato.ai.budget_input import BudgetIncrease
        from legato.engine.pause import pause_flow_run

        key = f"llm-budget[{spend.pauses}]"
        spend.pauses += 1
        from legato.engine.logs import get_run_logger

        found, _ = flow_ctx.store.get_run_input(run_id, key)
        if not found:  # said when pausing, not again each time a resume replays it
            get_run_logger().warning(
                "model budget exceeded (%s): pausing at %s; resume with a raised budget, "
                "e.g. legato resume %s --input '{\"usd\": 10}'",
                what,
                key,
                run_id,
            )
        raised = pause_flow_run(wait_for_input=BudgetIncrease, key=key)
        if raised.usd is not None:
            spend.raised_usd = raised.usd
        if raised.tokens is not None:
            spend.raised_tokens = raised.tokens
