"""`OpenAIClient`: the chat-completions API of OpenAI or any OpenAI-compatible server
(vLLM, Ollama, LM Studio...), through the ``openai`` package (extra ``legato[ai]``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from legato import settings
from legato._llm_records import LLMUsage
from legato.ai.providers._common import MappedErrors, SDKModelClient, missing
from legato.ai.types import (
    Message,
    ModelRequest,
    ModelResponse,
    StreamChunk,
    ToolCall,
)
from legato.errors import ConfigurationError

PROVIDER = "openai"
# Sent when a base URL is configured but no key: local OpenAI-compatible servers
# (Ollama, vLLM, LM Studio) ignore the key, but the openai package requires one.
_UNUSED_KEY = "not-needed"


class OpenAIClient(SDKModelClient):
    """A `ModelClient` on the OpenAI chat-completions API.

    ``base_url`` and ``api_key`` default to the ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``
    settings, ``timeout`` (seconds) to ``LEGATO_AI_TIMEOUT_SECONDS``. ``client`` is an
    ``openai.OpenAI`` to use instead of building one. The SDK never retries
    (``max_retries=0``): a failed call is retried by the durable step under its task's
    retry options.
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
            raise ConfigurationError("OpenAIClient needs a model name, e.g. 'gpt-4o-mini'")
        self._model = model
        if client is None:
            try:
                import openai
            except ImportError as error:
                raise missing("openai", "the OpenAI model client", error) from error
            base_url = base_url or settings.openai_base_url()
            api_key = api_key or settings.openai_api_key()
            if api_key is None:
                if base_url is None:
                    raise ConfigurationError(
                        f"no API key for OpenAI model {model}: set OPENAI_API_KEY (or pass "
                        "api_key=), or set OPENAI_BASE_URL to an OpenAI-compatible server"
                    )
                api_key = _UNUSED_KEY
            client = openai.OpenAI(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout if timeout is not None else settings.ai_timeout_seconds(),
                max_retries=0,
            )
        self._client = client

    def request(self, request: ModelRequest) -> ModelResponse:
        kwargs = self._arguments(request)
        with MappedErrors(PROVIDER, self._model, "openai"):
            completion = self._client.chat.completions.create(**kwargs)
        return _response(completion, self._model)

    def stream(self, request: ModelRequest) -> Iterator[StreamChunk | ModelResponse]:
        kwargs = self._arguments(request)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        texts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage: Any = None
        finish_reason: str | None = None
        model = self._model
        ident = ""
        with MappedErrors(PROVIDER, self._model, "openai"):
            chunks = self._client.chat.completions.create(**kwargs)
            try:
                for chunk in chunks:
                    ident = chunk.id or ident
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        if choice.finish_reason is not None:
                            finish_reason = choice.finish_reason
                        delta = choice.delta
                        for part in delta.tool_calls or ():
                            call = calls.setdefault(
                                part.index, {"id": "", "name": "", "arguments": ""}
                            )
                            call["id"] = part.id or call["id"]
                            if part.function is not None:
                                call["name"] += part.function.name or ""
                                call["arguments"] += part.function.arguments or ""
                        if delta.content:
                            texts.append(delta.content)
                            yield StreamChunk(delta.content)
            finally:
                chunks.close()
        tool_calls = tuple(
            ToolCall(call["id"], call["name"], call["arguments"])
            for _, call in sorted(calls.items())
        )
        text = "".join(texts)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_calls:
            message["tool_calls"] = [_tool_call_json(call) for call in tool_calls]
        raw = {
            "id": ident,
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": usage.model_dump(mode="json") if usage is not None else None,
        }
        yield ModelResponse(
            text=text,
            model=model,
            usage=_usage(usage),
            finish_reason=finish_reason,
            tool_calls=tool_calls,
            raw=raw,
        )

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(request.params)
        kwargs["model"] = self._model
        kwargs["messages"] = [_message_json(message) for message in request.messages]
        if request.tools:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": dict(tool.parameters),
                    },
                }
                for tool in request.tools
            ]
        if request.output is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.output.name,
                    "schema": dict(request.output.schema),
                    "strict": False,
                },
            }
        return kwargs


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _message_json(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        if not message.tool_call_id:
            raise ConfigurationError(
                "a tool message needs the tool_call_id of the call it answers; "
                "set Message(role='tool', tool_call_id=...)"
            )
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant":
        body: dict[str, Any] = {"role": "assistant", "content": message.content or None}
        if message.tool_calls:
            body["tool_calls"] = [_tool_call_json(call) for call in message.tool_calls]
        return body
    body = {"role": message.role, "content": message.content}
    if message.name:
        body["name"] = message.name
    return body


def _usage(usage: Any) -> LLMUsage:
    if usage is None:
        return LLMUsage()
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return LLMUsage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=(getattr(prompt_details, "cached_tokens", None) or 0),
        reasoning_tokens=(getattr(completion_details, "reasoning_tokens", None) or 0),
    )


def _response(completion: Any, model: str) -> ModelResponse:
    choices = completion.choices or []
    text = ""
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = []
    if choices:
        choice = choices[0]
        finish_reason = choice.finish_reason
        text = choice.message.content or ""
        for call in choice.message.tool_calls or ():
            function = getattr(call, "function", None)
            if function is not None:
                tool_calls.append(ToolCall(call.id, function.name, function.arguments or ""))
    return ModelResponse(
        text=text,
        model=completion.model or model,
        usage=_usage(completion.usage),
        finish_reason=finish_reason,
        tool_calls=tuple(tool_calls),
        raw=completion.model_dump(mode="json"),
    )
