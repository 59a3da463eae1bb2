"""What a durable model call returns (and what is stored as its task result)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from legato._llm_records import LLMUsage
from legato.ai.types import Message, ToolCall

T = TypeVar("T")


@dataclass(frozen=True)
class LLMResult(Generic[T]):
    """A model's accepted answer with what it took to get it.

    ``output`` is the validated object when an ``output_type`` was asked, else the
    text. ``usage`` and ``cost_usd`` sum every try of the call (validation retries
    included, also tries made before a crash); ``cost_usd`` is None when the model
    has no price (see `legato.ai.set_prices`).
    """

    output: T
    text: str
    provider: str
    model: str
    call_key: str
    tries: int
    usage: LLMUsage
    cost_usd: float | None
    latency_seconds: float
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    prompt_name: str | None = None
    prompt_version: str | None = None

    @property
    def message(self) -> Message:
        """The answer as an assistant message, to continue a conversation."""
        return Message("assistant", self.text, self.tool_calls)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        cost = "?" if self.cost_usd is None else f"${self.cost_usd:.6f}"
        return (
            f"LLMResult({self.call_key}, {self.provider}:{self.model}, tries={self.tries}, "
            f"tokens={self.usage.total_tokens}, cost={cost}, output={self.output!r:.80})"
        )
