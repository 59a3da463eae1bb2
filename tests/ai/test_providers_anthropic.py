"""AnthropicClient against a real local HTTP server speaking the messages API."""

from __future__ import annotations

import json

import pytest
from anthropic_server import Reply, anthropic_server

from legato._llm_records import LLMUsage
from legato.ai.providers.anthropic import AnthropicClient
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


def client(base_url: str) -> AnthropicClient:
    return AnthropicClient("claude-test", base_url=base_url, api_key="ak-test", timeout=10)


def api_key(headers: dict[str, str]) -> str:
    """The key sent: ``x-api-key``, or a bearer token in newer SDKs."""
    return headers.get("x-api-key") or headers["authorization"].removeprefix("Bearer ")


def ask(text: str, **params: object) -> ModelRequest:
    return ModelRequest(
        (Message("system", "Be brief."), Message("system", "Be kind."), Message("user", text)),
        params=params,
    )


def test_text_answer_system_usage_and_parameters() -> None:
    reply = Reply.reply(
        "Paris.",
        input_tokens=20,
        output_tokens=3,
        cache_read_input_tokens=100,
        cache_creation_input_tokens=5,
    )
    with anthropic_server([reply]) as server:
        response = client(server.base_url).request(
            ask("Capital of France?", temperature=0.2, stop="\n")
        )
    assert response.text == "Paris."
    assert response.model == "claude-test"
    assert response.finish_reason == "end_turn"
    # input_tokens counts the cache reads and writes the API reports apart
    assert response.usage == LLMUsage(125, 3, cached_tokens=100, reasoning_tokens=0)
    assert response.raw["content"][0]["text"] == "Paris."
    assert response.raw["usage"]["cache_read_input_tokens"] == 100
    [body] = server.requests
    assert body["system"] == "Be brief.\n\nBe kind."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}
    ]
    assert body["max_tokens"] == 4096
    assert body["temperature"] == 0.2
    assert body["stop_sequences"] == ["\n"]
    assert api_key(server.headers[0]) == "ak-test"


def test_max_tokens_from_params() -> None:
    with anthropic_server(["ok"]) as server:
        client(server.base_url).request(ask("hi", max_tokens=12))
    assert server.requests[0]["max_tokens"] == 12


def test_tool_use_and_tool_results_round_trip() -> None:
    use = ("toolu_1", "weather", {"city": "Oslo"})
    with anthropic_server([Reply.uses(use, text="Let me look."), "Cold."]) as server:
        model = client(server.base_url)
        first = model.request(ModelRequest((Message("user", "Oslo weather?"),), (WEATHER,)))
        assert first.tool_calls == (ToolCall("toolu_1", "weather", '{"city": "Oslo"}'),)
        assert first.text == "Let me look."
        assert first.finish_reason == "tool_use"
        history = (
            Message("user", "Oslo weather?"),
            Message("assistant", first.text, tool_calls=first.tool_calls),
            Message("tool", "-5C", tool_call_id="toolu_1", name="weather"),
            Message("user", "Answer in one word."),
        )
        assert model.request(ModelRequest(history, (WEATHER,))).text == "Cold."
    assert server.requests[0]["tools"] == [
        {
            "name": "weather",
            "description": "The weather in a city.",
            "input_schema": dict(WEATHER.parameters),
        }
    ]
    assert server.requests[1]["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "-5C"},
                {"type": "text", "text": "Answer in one word."},
            ],
        },
    ]


def test_output_spec_is_a_forced_tool_whose_input_is_the_answer() -> None:
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    reply = Reply.uses(("toolu_9", "Ticket", {"label": "bug"}))
    with anthropic_server([reply]) as server:
        response = client(server.base_url).request(
            ModelRequest((Message("user", "Classify"),), (WEATHER,), OutputSpec("Ticket", schema))
        )
    assert json.loads(response.text) == {"label": "bug"}
    assert response.tool_calls == ()
    body = server.requests[0]
    assert body["tool_choice"] == {"type": "tool", "name": "Ticket"}
    assert [tool["name"] for tool in body["tools"]] == ["weather", "Ticket"]
    assert body["tools"][1]["input_schema"] == schema


def test_output_named_like_a_tool_is_refused() -> None:
    with anthropic_server() as server:
        request = ModelRequest(
            (Message("user", "x"),), (WEATHER,), OutputSpec("weather", {"type": "object"})
        )
        with pytest.raises(ConfigurationError, match="rename one"):
            client(server.base_url).request(request)
    assert server.requests == []


def test_rate_limit_carries_retry_after_and_sdk_does_not_retry() -> None:
    with (
        anthropic_server([Reply.error(429, retry_after="4"), "never"]) as server,
        pytest.raises(ModelRateLimitError) as caught,
    ):
        client(server.base_url).request(ask("hi"))
    assert caught.value.retry_after == 4.0
    assert (caught.value.provider, caught.value.model) == ("anthropic", "claude-test")
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [500, 529])
def test_overloaded_and_server_errors_are_unavailable(status: int) -> None:
    with (
        anthropic_server([Reply.error(status, "busy"), "never"]) as server,
        pytest.raises(ModelUnavailableError, match=f"anthropic failed.*HTTP {status}"),
    ):
        client(server.base_url).request(ask("hi"))
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 401])
def test_other_statuses_are_rejections(status: int) -> None:
    with (
        anthropic_server([Reply.error(status, "nope")]) as server,
        pytest.raises(ModelRequestRejectedError, match=f"HTTP {status}"),
    ):
        client(server.base_url).request(ask("hi"))


def test_stream_yields_text_then_one_response() -> None:
    reply = Reply.reply("one two three", input_tokens=7, output_tokens=3)
    with anthropic_server([reply]) as server:
        items = list(client(server.base_url).stream(ask("count")))
    assert [item.text for item in items if isinstance(item, StreamChunk)] == [
        "one ",
        "two ",
        "three",
    ]
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.text == "one two three"
    assert final.usage == LLMUsage(7, 3)
    assert final.finish_reason == "end_turn"
    assert server.requests[0]["stream"] is True


def test_stream_tool_use_and_structured_output() -> None:
    reply = Reply.uses(("toolu_2", "Ticket", {"label": "question"}))
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    with anthropic_server([reply]) as server:
        request = ModelRequest((Message("user", "x"),), output=OutputSpec("Ticket", schema))
        items = list(client(server.base_url).stream(request))
    [final] = items
    assert isinstance(final, ModelResponse)
    assert json.loads(final.text) == {"label": "question"}


def test_stream_errors_are_mapped() -> None:
    with (
        anthropic_server([Reply.error(529, "overloaded")]) as server,
        pytest.raises(ModelUnavailableError),
    ):
        list(client(server.base_url).stream(ask("hi")))


def test_defaults_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with anthropic_server(["from env"]) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-env")
        model = AnthropicClient("claude-env")
        assert isinstance(model, ModelClient)
        assert (model.provider, model.model) == ("anthropic", "claude-env")
        assert model.request(ask("hi")).text == "from env"
    assert api_key(server.headers[0]) == "ak-env"


def test_no_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        AnthropicClient("claude-x")
