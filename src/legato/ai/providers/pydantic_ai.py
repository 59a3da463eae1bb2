"""`PydanticAIModelClient`: any model pydantic-ai supports (Groq, Gemini, Mistral,
Bedrock, its FunctionModel/TestModel...), through pydantic-ai's direct model API
(extra ``legato[ai]``).

pydantic-ai models are async: requests run on one private event loop in a daemon
thread of this process (started on first use, again after a fork), so a model and
its HTTP client always live on the same loop, whether or not the caller already runs
an event loop.

Structured output (`OutputSpec`) is asked as pydantic-ai's output tool named after the
output; the answer's text is that tool call's arguments (JSON). ``stream()`` does not
stream: it yields the whole text as one chunk, then the response. The request's
params are pydantic-ai model settings (``max_tokens``, ``temperature``, ``top_p``,
``seed``, ``stop`` as ``stop_sequences``...); ``max_retries`` is 0 unless given, so
transport retries are legato's (the durable step's task retry options).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from legato._llm_records import LLMUsage
from legato.ai.providers._common import connection_error, missing, status_error
from legato.ai.types import Message, ModelRequest, ModelResponse, StreamChunk, ToolCall
from legato.errors import (
    ConfigurationError,
    ModelError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    ModelUnavailableError,
)

T = TypeVar("T")


class PydanticAIModelClient:
    """A `ModelClient` on a pydantic-ai ``Model``, or a pydantic-ai model name such as
    ``"groq:llama-3.3-70b-versatile"`` (built with ``pydantic_ai.models.infer_model``)."""

    def __init__(self, model: Any) -> None:
        try:
            from pydantic_ai import models
        except ImportError as error:
            raise missing("pydantic_ai", "a pydantic-ai model client", error) from error
        if isinstance(model, str):
            try:
                model = models.infer_model(model)
            except Exception as error:
                raise ConfigurationError(
                    f"pydantic-ai cannot build a model from {model!r} ({error}); give a name "
                    "pydantic-ai knows, such as 'groq:llama-3.3-70b-versatile', with its "
                    "provider's API key set"
                ) from error
        if not isinstance(model, models.Model):
            raise ConfigurationError(
                f"PydanticAIModelClient needs a pydantic-ai Model or model name, not {model!r}"
            )
        self._model = model

    @property
    def provider(self) -> str:
        return str(self._model.system)

    @property
    def model(self) -> str:
        return str(self._model.model_name)

    @property
    def wrapped(self) -> Any:
        """The pydantic-ai ``Model``."""
        return self._model

    def __repr__(self) -> str:
        return f"PydanticAIModelClient({self.provider}:{self.model})"

    def request(self, request: ModelRequest) -> ModelResponse:
        from pydantic_ai import exceptions
        from pydantic_ai.direct import model_request

        messages = _messages(request.messages)
        parameters = _parameters(request)
        model_settings = _settings(self._model, request)
        try:
            answer = _run(
                model_request(
                    self._model,
                    messages,
                    model_settings=model_settings,
                    model_request_parameters=parameters,
                )
            )
        except exceptions.ModelAPIError as error:
            raise _mapped(self.provider, self.model, error) from error
        return _response(answer, self.model, request)

    def stream(self, request: ModelRequest) -> Iterator[StreamChunk | ModelResponse]:
        response = self.request(request)
        if response.text:
            yield StreamChunk(response.text)
        yield response


def _messages(messages: tuple[Message, ...]) -> list[Any]:
    from pydantic_ai import messages as pai

    names: dict[str, str] = {}
    result: list[Any] = []
    parts: list[Any] = []

    def flush() -> None:
        if parts:
            result.append(pai.ModelRequest(parts=list(parts)))
            parts.clear()

    for message in messages:
        if message.role == "system":
            parts.append(pai.SystemPromptPart(message.content))
        elif message.role == "user":
            parts.append(pai.UserPromptPart(message.content))
        elif message.role == "tool":
            if not message.tool_call_id:
                raise ConfigurationError(
                    "a tool message needs the tool_call_id of the call it answers; "
                    "set Message(role='tool', tool_call_id=...)"
                )
            name = message.name or names.get(message.tool_call_id, "")
            parts.append(pai.ToolReturnPart(name, message.content, message.tool_call_id))
        else:
            flush()
            answer: list[Any] = []
            if message.content:
                answer.append(pai.TextPart(message.content))
            for call in message.tool_calls:
                names[call.id] = call.name
                answer.append(pai.ToolCallPart(call.name, call.arguments or None, call.id))
            result.append(pai.ModelResponse(parts=answer))
    flush()
    return result


def _parameters(request: ModelRequest) -> Any:
    from pydantic_ai.models import ModelRequestParameters
    from pydantic_ai.tools import ToolDefinition

    tools = [
        ToolDefinition(
            name=tool.name,
            description=tool.description,
            parameters_json_schema=dict(tool.parameters),
        )
        for tool in request.tools
    ]
    if request.output is None:
        return ModelRequestParameters(function_tools=tools)
    if any(tool.name == request.output.name for tool in request.tools):
        raise ConfigurationError(
            f"the output {request.output.name!r} has the name of one of the tools; "
            "structured output is asked through a tool of that name: rename one"
        )
    output = ToolDefinition(
        name=request.output.name,
        description="Give the final answer with this tool; its arguments are the answer.",
        parameters_json_schema=dict(request.output.schema),
        kind="output",
    )
    return ModelRequestParameters(
        function_tools=tools,
        output_mode="tool",
        output_tools=[output],
        allow_text_output=False,
    )


def _settings(model: Any, request: ModelRequest) -> Any:
    settings: dict[str, Any] = dict(request.params)
    if "stop" in settings:
        stop = settings.pop("stop")
        settings["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if "max_retries" not in model.unsupported_settings:
        settings.setdefault("max_retries", 0)
    return settings or None


def _response(answer: Any, model: str, request: ModelRequest) -> ModelResponse:
    from pydantic_ai import messages as pai

    output = request.output.name if request.output is not None else None
    texts: list[str] = []
    calls: list[ToolCall] = []
    result: str | None = None
    for part in answer.parts:
        if isinstance(part, pai.TextPart):
            texts.append(part.content)
        elif isinstance(part, pai.ToolCallPart):
            if part.tool_name == output and result is None:
                result = part.args_as_json_str()
            else:
                calls.append(ToolCall(part.tool_call_id, part.tool_name, part.args_as_json_str()))
    usage = answer.usage
    details = usage.details or {}
    [raw] = pai.ModelMessagesTypeAdapter.dump_python([answer], mode="json")
    return ModelResponse(
        text=result if result is not None else "".join(texts),
        model=answer.model_name or model,
        usage=LLMUsage(
            input_tokens=usage.input_tokens or 0,
            output_tokens=usage.output_tokens or 0,
            cached_tokens=usage.cache_read_tokens or 0,
            reasoning_tokens=int(details.get("reasoning_tokens", 0)),
        ),
        finish_reason=answer.finish_reason,
        tool_calls=tuple(calls),
        raw=raw,
    )


def _mapped(provider: str, model: str, error: Any) -> ModelError:
    from pydantic_ai import exceptions

    if isinstance(error, exceptions.ModelHTTPError):
        failure = status_error(provider, model, error.status_code, str(error), error.headers)
        if isinstance(failure, ModelRateLimitError) and failure.retry_after is None:
            return ModelRateLimitError(provider, model, error.retry_after, str(error))
        return failure
    if isinstance(error, exceptions.ModelRateLimitError):
        return ModelRateLimitError(provider, model, error.retry_after, str(error))
    if isinstance(error, exceptions.ModelConnectionError | exceptions.ModelRequestTimeout):
        return connection_error(provider, model, str(error))
    if isinstance(error, exceptions.ModelRequestRejectedError | exceptions.ModelQuotaExceededError):
        return ModelRequestRejectedError(
            f"{provider} rejected the request to {model}: {error}; retrying would fail the "
            "same way: check the API key, the model name, the quota and the parameters"
        )
    return ModelUnavailableError(
        f"{provider} failed the request to {model}: {error}; the call is retried under its "
        "task's retry options"
    )


class _Loop:
    """One private event loop in a daemon thread, per process."""

    lock = threading.Lock()
    loop: asyncio.AbstractEventLoop | None = None
    pid = 0

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls.lock:
            if cls.loop is None or cls.pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="legato-pydantic-ai", daemon=True
                )
                thread.start()
                cls.loop, cls.pid = loop, os.getpid()
            return cls.loop


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run_coroutine_threadsafe(coroutine, _Loop.get()).result()
