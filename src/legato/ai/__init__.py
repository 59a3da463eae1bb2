"""AI-native workflows: model calls as durable steps.

    from legato import flow
    from legato import ai

    @flow(llm_budget=ai.Budget(usd=2))
    def triage(ticket: str) -> str:
        label = ai.call("openai:gpt-4o-mini", f"Classify: {ticket}", output_type=Label)
        ...

Importing this package loads no provider client: `openai`, `anthropic` and
`pydantic_ai` (the ``legato[ai]`` extra) load when a call first needs them.
"""

from __future__ import annotations

from legato._llm_records import LLMCallRecord, LLMUsage
from legato.ai.agents import DurableAgent, ToolApproval, agent
from legato.ai.budget import Budget
from legato.ai.pricing import Price, reset_prices, set_prices
from legato.ai.prompts import Prompt, RenderedPrompt
from legato.ai.results import LLMResult
from legato.ai.step import call, set_redactor
from legato.ai.stream import AsyncLLMStream, LLMStream, acall
from legato.ai.types import (
    Message,
    ModelClient,
    ModelRequest,
    ModelResponse,
    OutputSpec,
    StreamChunk,
    ToolCall,
    ToolSpec,
)

__all__ = [
    "AsyncLLMStream",
    "Budget",
    "DurableAgent",
    "LLMCallRecord",
    "LLMResult",
    "LLMStream",
    "LLMUsage",
    "Message",
    "ModelClient",
    "ModelRequest",
    "ModelResponse",
    "OutputSpec",
    "Price",
    "Prompt",
    "RenderedPrompt",
    "StreamChunk",
    "ToolApproval",
    "ToolCall",
    "ToolSpec",
    "acall",
    "agent",
    "call",
    "reset_prices",
    "set_prices",
    "set_redactor",
]
