"""`AnthropicClient`: Anthropic's messages API through the ``anthropic`` package
(extra ``legato[ai]``).

Structured output (`OutputSpec`) is asked as a forced tool named after the output
whose input schema is the output's schema; the answer's text is that tool's input as
JSON, and the forced tool never appears among the response's tool calls.

Usage: Anthropic reports ``input_tokens`` without the prompt-cache tokens, which come
apart as ``cache_read_input_tokens`` and ``cache_creation_input_tokens``. legato's
``input_tokens`` is every input token (the three summed) and ``cached_tokens`` the
cache reads, so ``cached_tokens`` stays a part of ``input_tokens`` as for OpenAI.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

from legato import settings
from legato._llm_records import LLMUsage
from legato.ai.providers._common import MappedErrors, SDKModelClient, missing
from legato.ai.types import Message, ModelRequest, ModelResponse, StreamChunk, ToolCall
from legato.errors import ConfigurationError

PROVIDER = "anthropic"
DEFAULT_MAX_TOKENS = 4096


class AnthropicClient(SDKModelClient):
    """A `ModelClient` on Anthropic's messages API.

    ``base_url`` and ``api_key`` default to ``ANTHROPIC_BASE_URL`` and
    ``ANTHROPIC_API_KEY``, ``timeout`` (seconds) to ``LEGATO_AI_TIMEOUT_SECONDS``;
    ``client`` is an ``anthropic.Anthropic`` to use instead. ``max_tokens`` (required by
    the API) comes from the request's params, else 4096. The SDK never retries
    (``max_retries=0``): the durable step retries under its task's retry options.
    """

    _provider = PROVIDER

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        client: Any = None,
    ) -> None:
        if not model:
            raise ConfigurationError("AnthropicClient needs a model name, e.g. 'claude-sonnet-4-5'")
        self._model = model
        if client is None:
            try:
                import anthropic
            except ImportError as error:
                raise missing("anthropic", "the Anthropic model client", error) from error
            api_key = api_key or settings.anthropic_api_key()
            if api_key is None:
                raise ConfigurationError(
                    f"no API key for Anthropic model {model}: set ANTHROPIC_API_KEY "
                    "(or pass api_key=)"
                )
            client = anthropic.Anthropic(
                api_key=api_key,
                base_url=base_url or settings.anthropic_base_url(),
                timeout=timeout if timeout is not None else settings.ai_timeout_seconds(),
                max_retries=0,
            )
        self._client = client

    def request(self, request: ModelRequest) -> ModelResponse:
        create = self._client.messages.create
        kwargs = _fit(create, _arguments(self._model, request))
        with MappedErrors(PROVIDER, self._model, "anthropic"):
            message = create(**kwargs)
        return _response(message, self._model, request)

    def stream(self, request: ModelRequest) -> Iterator[StreamChunk | ModelResponse]:
        stream = self._client.messages.stream
        kwargs = _fit(stream, _arguments(self._model, request))
        with MappedErrors(PROVIDER, self._model, "anthropic"), stream(**kwargs) as events:
            for text in events.text_stream:
                if text:
                    yield StreamChunk(text)
            message = events.get_final_message()
        yield _response(message, self._model, request)


def _fit(method: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pass the parameters the SDK method does not name (``temperature``, ``top_p``... in
    SDK versions that dropped them) in the request body through ``extra_body``."""
    named = inspect.signature(method).parameters
    extra = {key: kwargs.pop(key) for key in list(kwargs) if key not in named}
    if extra:
        kwargs["extra_body"] = {**extra, **(kwargs.get("extra_body") or {})}
    return kwargs


def _arguments(model: str, request: ModelRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(request.params)
    if "stop" in kwargs:
        stop = kwargs.pop("stop")
        kwargs["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    kwargs.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    kwargs["model"] = model
    system = [message.content for message in request.messages if message.role == "system"]
    if system:
        kwargs["system"] = "\n\n".join(system)
    kwargs["messages"] = _messages(request.messages)
    tools = [
        {"name": tool.name, "description": tool.description, "input_schema": dict(tool.parameters)}
        for tool in request.tools
    ]
    if request.output is not None:
        if any(tool.name == request.output.name for tool in request.tools):
            raise ConfigurationError(
                f"the output {request.output.name!r} has the name of one of the tools; "
                "Anthropic answers structured output through a tool of that name: rename one"
            )
        tools.append(
            {
                "name": request.output.name,
                "description": "Give the final answer with this tool; its input is the answer.",
                "input_schema": dict(request.output.schema),
            }
        )
        kwargs["tool_choice"] = {"type": "tool", "name": request.output.name}
    if tools:
        kwargs["tools"] = tools
    return kwargs


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Anthropic messages: tool answers become ``tool_result`` blocks of a user message;
    consecutive messages of one role are merged (the API wants them alternating)."""
    result: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        blocks: list[dict[str, Any]] = []
        role = message.role
        if role == "tool":
            if not message.tool_call_id:
                raise ConfigurationError(
                    "a tool message needs the tool_call_id of the call it answers; "
                    "set Message(role='tool', tool_call_id=...)"
                )
            role = "user"
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id,
                    "content": message.content,
                }
            )
        else:
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": json.loads(call.arguments) if call.arguments else {},
                    }
                )
        if result and result[-1]["role"] == role:
            result[-1]["content"].extend(blocks)
        else:
            result.append({"role": role, "content": blocks})
    return result


def _usage(usage: Any) -> LLMUsage:
    cache_read = getattr(usage, "cache_read_input_tokens", None) or 0
    cache_write = getattr(usage, "cache_creation_input_tokens", None) or 0
    details = getattr(usage, "output_tokens_details", None)
    return LLMUsage(
        input_tokens=(usage.input_tokens or 0) + cache_read + cache_write,
        output_tokens=usage.output_tokens or 0,
        cached_tokens=cache_read,
        reasoning_tokens=getattr(details, "thinking_tokens", None) or 0,
    )


def _response(message: Any, model: str, request: ModelRequest) -> ModelResponse:
    output = request.output.name if request.output is not None else None
    texts: list[str] = []
    calls: list[ToolCall] = []
    answer: str | None = None
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            if block.name == output and answer is None:
                answer = json.dumps(block.input)
            else:
                calls.append(ToolCall(block.id, block.name, json.dumps(block.input)))
    return ModelResponse(
        text=answer if answer is not None else "".join(texts),
        model=message.model or model,
        usage=_usage(message.usage),
        finish_reason=message.stop_reason,
        tool_calls=tuple(calls),
        raw=message.model_dump(mode="json"),
    )
