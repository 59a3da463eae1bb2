"""The provider-neutral shapes of a model request and its answer.

Every provider client (`legato.ai.providers`) turns a `ModelRequest` into its
own API's call and its answer into a `ModelResponse`; the durable step
(`legato.ai.call`) records those, never a provider's own objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from legato._llm_records import LLMUsage

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the model asked to call; ``arguments`` is the JSON text it wrote."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. ``tool_calls`` on assistant messages; ``tool_call_id`` (and
    the tool's ``name``) on the tool message answering one."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model: its JSON-schema ``parameters``."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """Structured output asked of the model: a JSON schema named ``name``."""

    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    output: OutputSpec | None = None
    # Model parameters passed through to the provider: temperature, max_tokens, top_p, seed...
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """A model's answer. ``raw`` is the provider's answer as JSON-able data (recorded)."""

    text: str
    model: str
    usage: LLMUsage
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A piece of text as the model streams it."""

    text: str


@runtime_checkable
class ModelClient(Protocol):
    """What `legato.ai.call` needs of a provider.

    ``request`` raises `ModelRateLimitError` (429, with the ``Retry-After`` it gave),
    `ModelUnavailableError` (5xx, connection failures, timeouts) or
    `ModelRequestRejectedError` (any other refusal: bad key, bad request). ``stream``
    yields `StreamChunk`s as text arrives, then exactly one `ModelResponse` last.
    """

    @property
    def provider(self) -> str: ...

    @property
    def model(self) -> str: ...

    def request(self, request: ModelRequest) -> ModelResponse: ...

    def stream(self, request: ModelRequest) -> Iterator[StreamChunk | ModelResponse]: ...
