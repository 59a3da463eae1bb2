"""PydanticAIModelClient: pydantic-ai's OpenAI model against the local OpenAI server,
and its FunctionModel to see exactly what pydantic-ai is given."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai_server import Answer, openai_server
from pydantic_ai import messages as pai
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.usage import RequestUsage

from legato._llm_records import LLMUsage
from legato.ai.providers.pydantic_ai import PydanticAIModelClient, _run
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
from legato.errors import (
    ConfigurationError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    ModelUnavailableError,
)

WEATHER = ToolSpec(
    "weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@contextmanager
def openai_model(base_url: str) -> Iterator[PydanticAIModelClient]:
    # the SDK's own default (2 retries) is left on: legato must turn it off per request
    client = AsyncOpenAI(base_url=base_url, api_key="sk-test")
    provider = OpenAIProvider(openai_client=client)
    try:
        yield PydanticAIModelClient(OpenAIChatModel("gpt-test", provider=provider))
    finally:
        # its connections live on legato's private loop: close them there
        _run(client.close())


def ask(text: str, **params: object) -> ModelRequest:
    return ModelRequest((Message("system", "Be brief."), Message("user", text)), params=params)


def test_openai_model_over_real_http() -> None:
    answer = Answer.reply(
        "Paris.", input_tokens=20, output_tokens=3, cached_tokens=8, reasoning_tokens=2
    )
    with openai_server([answer]) as server, openai_model(server.base_url) as model:
        assert isinstance(model, ModelClient)
        assert (model.provider, model.model) == ("openai", "gpt-test")
        response = model.request(ask("Capital of France?", temperature=0.3, max_tokens=40))
    assert response.text == "Paris."
    assert response.model == "gpt-test"
    assert response.finish_reason == "stop"
    assert response.usage == LLMUsage(20, 3, cached_tokens=8, reasoning_tokens=2)
    assert response.raw["parts"][0]["content"] == "Paris."
    [body] = server.requests
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert (body["temperature"], body.get("max_tokens", body.get("max_completion_tokens"))) == (
        0.3,
        40,
    )


def test_openai_model_tool_calls_and_output_tool() -> None:
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    script = [
        Answer.calls(("call_1", "weather", '{"city": "Oslo"}')),
        Answer.calls(("call_2", "Ticket", '{"label": "bug"}')),
    ]
    with openai_server(script) as server, openai_model(server.base_url) as model:
        first = model.request(ModelRequest((Message("user", "Oslo?"),), (WEATHER,)))
        [call] = first.tool_calls
        assert (call.id, call.name, json.loads(call.arguments)) == (
            "call_1",
            "weather",
            {"city": "Oslo"},
        )
        history = (
            Message("user", "Oslo?"),
            Message("assistant", "", tool_calls=first.tool_calls),
            Message("tool", "-5C", tool_call_id="call_1"),
        )
        second = model.request(ModelRequest(history, (WEATHER,), OutputSpec("Ticket", schema)))
    assert json.loads(second.text) == {"label": "bug"}
    assert second.tool_calls == ()
    tools = {tool["function"]["name"] for tool in server.requests[1]["tools"]}
    assert tools == {"weather", "Ticket"}
    messages = server.requests[1]["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_1"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "-5C"}


def test_rate_limit_and_server_errors_are_mapped_without_sdk_retries() -> None:
    script = [Answer.error(429, retry_after="5"), Answer.error(500, "boom"), Answer.error(401)]
    with openai_server(script) as server, openai_model(server.base_url) as model:
        with pytest.raises(ModelRateLimitError) as caught:
            model.request(ask("hi"))
        assert caught.value.retry_after == 5.0
        assert len(server.requests) == 1
        with pytest.raises(ModelUnavailableError, match="HTTP 500"):
            model.request(ask("hi"))
        assert len(server.requests) == 2
        with pytest.raises(ModelRequestRejectedError, match="HTTP 401"):
            model.request(ask("hi"))
    assert len(server.requests) == 3


def test_connection_refused_is_unavailable() -> None:
    with openai_server() as server:
        base_url = server.base_url
    with openai_model(base_url) as model, pytest.raises(ModelUnavailableError):
        model.request(ask("hi"))


def test_function_model_sees_converted_request() -> None:
    seen: dict[str, Any] = {}

    def answer(messages: list[pai.ModelMessage], info: AgentInfo) -> pai.ModelResponse:
        seen["messages"] = messages
        seen["tools"] = [tool.name for tool in info.function_tools]
        seen["output_tools"] = [tool.name for tool in info.output_tools]
        seen["settings"] = info.model_settings
        return pai.ModelResponse(
            parts=[pai.ToolCallPart("Ticket", {"label": "bug"}, "out_1")],
            usage=RequestUsage(
                input_tokens=9,
                output_tokens=4,
                cache_read_tokens=3,
                details={"reasoning_tokens": 1},
            ),
        )

    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    history = (
        Message("system", "Classify."),
        Message("user", "Oslo?"),
        Message("assistant", "Looking.", tool_calls=(ToolCall("c1", "weather", "{}"),)),
        Message("tool", "-5C", tool_call_id="c1"),
    )
    request = ModelRequest(history, (WEATHER,), OutputSpec("Ticket", schema), {"stop": "END"})
    response = PydanticAIModelClient(FunctionModel(answer)).request(request)
    assert json.loads(response.text) == {"label": "bug"}
    assert response.usage == LLMUsage(9, 4, cached_tokens=3, reasoning_tokens=1)
    assert seen["tools"] == ["weather"]
    assert seen["output_tools"] == ["Ticket"]
    assert seen["settings"]["stop_sequences"] == ["END"]
    assert seen["settings"]["max_retries"] == 0
    first, reply, tool = seen["messages"]
    assert [type(part).__name__ for part in first.parts] == ["SystemPromptPart", "UserPromptPart"]
    assert [type(part).__name__ for part in reply.parts] == ["TextPart", "ToolCallPart"]
    [result] = tool.parts
    assert (result.tool_name, result.content, result.tool_call_id) == ("weather", "-5C", "c1")


def test_stream_yields_the_whole_text_then_the_response() -> None:
    def answer(messages: list[pai.ModelMessage], info: AgentInfo) -> pai.ModelResponse:
        return pai.ModelResponse(parts=[pai.TextPart("all at once")])

    items = list(PydanticAIModelClient(FunctionModel(answer)).stream(ask("hi")))
    assert isinstance(items[0], StreamChunk)
    assert items[0].text == "all at once"
    assert isinstance(items[1], ModelResponse)
    assert items[1].text == "all at once"
    assert len(items) == 2


def test_works_inside_a_running_event_loop() -> None:
    def answer(messages: list[pai.ModelMessage], info: AgentInfo) -> pai.ModelResponse:
        return pai.ModelResponse(parts=[pai.TextPart("from a loop")])

    model = PydanticAIModelClient(FunctionModel(answer))

    async def main() -> str:
        return model.request(ask("hi")).text

    assert asyncio.run(main()) == "from a loop"


def test_not_a_model_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="pydantic-ai Model"):
        PydanticAIModelClient(42)
    with pytest.raises(ConfigurationError, match="pydantic-ai cannot build"):
        PydanticAIModelClient("no-such-provider:some-model")
