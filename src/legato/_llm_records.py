"""Records of model calls and prompt versions, shared by the store and `legato.ai`.

Kept apart from `legato.ai` so the store can use them without importing any
provider client (the store never imports the engine or the AI layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class LLMUsage:
    """Tokens one model answer (or a sum of answers) used.

    ``cached_tokens`` is the part of ``input_tokens`` the provider served from its
    prompt cache; ``reasoning_tokens`` the part of ``output_tokens`` spent reasoning.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


class LLMOutcome(StrEnum):
    """How one try of a model call ended."""

    OK = "ok"  # the answer was accepted (and validated, when an output type was asked)
    INVALID = "invalid"  # the answer failed validation; the next try feeds the error back


@dataclass(frozen=True, slots=True)
class LLMCallRecord:
    """One answered try of one durable model call (``llm[3]`` try 2 is ``llm[3].try[2]``).

    Written as soon as the answer arrives, fenced by the flow run's owner, so a resume
    finds every try that was paid for and never asks the provider again for it.
    ``request_json`` holds the request after the redaction hook; ``response_json`` the
    answer as recorded (text, tool calls, the provider's body). ``copied_from`` is the
    flow run a fork copied this record from (its cost was paid there).
    """

    id: str
    flow_run_id: str
    call_key: str
    try_number: int
    provider: str
    model: str
    outcome: LLMOutcome
    started: datetime
    latency_seconds: float
    usage: LLMUsage
    cost_usd: float | None
    finish_reason: str | None
    params_json: str
    request_json: str
    response_json: str
    error: str | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    copied_from: str | None = None

    @property
    def step_key(self) -> str:
        return f"{self.call_key}.try[{self.try_number}]"


class LLMGroup(StrEnum):
    """What `Store.llm_usage_totals` sums by."""

    FLOW_RUN = "flow_run"
    FLOW = "flow"
    DEPLOYMENT = "deployment"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class LLMUsageTotal:
    """Tries, tokens and cost summed over one group (a flow run id, a flow name, a
    deployment name -- "" for runs without one -- or a model)."""

    group: str
    calls: int
    usage: LLMUsage
    cost_usd: float


@dataclass(frozen=True, slots=True)
class LLMUsageCounter:
    """Monotonic totals for the metrics, kept by the store as tries are written
    (never decreased by pruning; a fork's copied records are not counted again)."""

    flow_name: str
    deployment_name: str  # "" when the run has no deployment
    provider: str
    model: str
    calls: int
    usage: LLMUsage
    cost_usd: float


@dataclass(frozen=True, slots=True)
class PromptVersion:
    """One stored version of a named prompt; ``version`` is its content hash."""

    name: str
    version: str
    template: str
    created: datetime


@dataclass(frozen=True, slots=True)
class PromptSummary:
    name: str
    versions: int
    latest_version: str
    latest_created: datetime
