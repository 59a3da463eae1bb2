"""OpenAIClient against a real local HTTP server speaking the chat-completions API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from openai_server import Answer, openai_server

from legato._llm_records import LLMUsage
from legato.ai.providers.openai import OpenAIClient
from legato.ai.types import (
    Message,
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


def client(base_url: str) -> OpenAIClient:
    return OpenAIClient("gpt-test", base_url=base_url, api_key="sk-test", timeout=10)


def ask(text: str, **params: object) -> ModelRequest:
    return ModelRequest((Message("system", "Be brief."), Message("user", text)), params=params)


def test_text_answer_usage_and_parameters() -> None:
    answer = Answer.reply(
        "Paris.", input_tokens=20, output_tokens=3, cached_tokens=8, reasoning_tokens=2
    )
    with openai_server([answer]) as server:
        response = client(server.base_url).request(
            ask("Capital of France?", temperature=0.2, max_tokens=50, seed=7, stop=["\n"])
        )
    assert response.text == "Paris."
    assert response.model == "gpt-test"
    assert response.finish_reason == "stop"
    assert response.usage == LLMUsage(20, 3, cached_tokens=8, reasoning_tokens=2)
    assert response.raw["choices"][0]["message"]["content"] == "Paris."
    [body] = server.requests
    assert body["model"] == "gpt-test"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert (body["temperature"], body["max_tokens"], body["seed"], body["stop"]) == (
        0.2,
        50,
        7,
        ["\n"],
    )
    assert server.headers[0]["authorization"] == "Bearer sk-test"


def test_missing_usage_details_count_zero() -> None:
    with openai_server([Answer.reply("ok", input_tokens=4, output_tokens=1)]) as server:
        response = client(server.base_url).request(ask("hi"))
    assert response.usage == LLMUsage(4, 1, 0, 0)


def test_tools_and_tool_messages_round_trip() -> None:
    call = ("call_1", "weather", '{"city": "Oslo"}')
    with openai_server([Answer.calls(call), "It is cold."]) as server:
        model = client(server.base_url)
        first = model.request(ModelRequest((Message("user", "Weather in Oslo?"),), (WEATHER,)))
        assert first.tool_calls == (ToolCall("call_1", "weather", '{"city": "Oslo"}'),)
        assert first.finish_reason == "tool_calls"
        assert first.text == ""
        history = (
            Message("user", "Weather in Oslo?"),
            Message("assistant", "", tool_calls=first.tool_calls),
            Message("tool", "-5C", tool_call_id="call_1", name="weather"),
        )
        second = model.request(ModelRequest(history, (WEATHER,)))
    assert second.text == "It is cold."
    assert server.requests[0]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "The weather in a city.",
                "parameters": dict(WEATHER.parameters),
            },
        }
    ]
    assert server.requests[1]["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "-5C"},
    ]


def test_output_spec_asks_for_a_json_schema() -> None:
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    with openai_server([Answer.reply('{"label": "bug"}')]) as server:
        response = client(server.base_url).request(
            ModelRequest((Message("user", "Classify"),), output=OutputSpec("Ticket", schema))
        )
    assert json.loads(response.text) == {"label": "bug"}
    assert server.requests[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Ticket", "schema": schema, "strict": False},
    }


def test_tool_message_without_call_id_is_refused_before_sending() -> None:
    with openai_server() as server, pytest.raises(ConfigurationError, match="tool_call_id"):
        client(server.base_url).request(ModelRequest((Message("tool", "x"),)))
    assert server.requests == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer.error(429, retry_after="7"), 7.0),
        (Answer.error(429, retry_after_ms="1500"), 1.5),
        (Answer.error(429), None),
    ],
)
def test_rate_limit_carries_retry_after(answer: Answer, expected: float | None) -> None:
    with openai_server([answer]) as server, pytest.raises(ModelRateLimitError) as caught:
        client(server.base_url).request(ask("hi"))
    assert caught.value.retry_after == expected
    assert caught.value.provider == "openai"
    assert caught.value.model == "gpt-test"
    # max_retries=0: the SDK never retried on its own
    assert len(server.requests) == 1


def test_rate_limit_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with (
        openai_server([Answer.error(429, retry_after=when)]) as server,
        pytest.raises(ModelRateLimitError) as caught,
    ):
        client(server.base_url).request(ask("hi"))
    assert caught.value.retry_after is not None
    assert 20 < caught.value.retry_after <= 30


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_unavailable_and_not_retried_by_the_sdk(status: int) -> None:
    with (
        openai_server([Answer.error(status, "boom"), "never sent"]) as server,
        pytest.raises(ModelUnavailableError, match=f"HTTP {status}.*boom"),
    ):
        client(server.base_url).request(ask("hi"))
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 404])
def test_other_statuses_are_rejections(status: int) -> None:
    with (
        openai_server([Answer.error(status, "bad thing")]) as server,
        pytest.raises(ModelRequestRejectedError, match=f"openai rejected.*gpt-test.*{status}"),
    ):
        client(server.base_url).request(ask("hi"))


def test_connection_refused_is_unavailable() -> None:
    with openai_server() as server:
        base_url = server.base_url
    with pytest.raises(ModelUnavailableError, match="got no answer"):
        client(base_url).request(ask("hi"))


def test_stream_yields_text_then_one_response() -> None:
    answer = Answer.reply(
        "one two three", input_tokens=12, output_tokens=3, cached_tokens=2, reasoning_tokens=1
    )
    with openai_server([answer]) as server:
        items = list(client(server.base_url).stream(ask("count")))
    chunks = [item for item in items if isinstance(item, StreamChunk)]
    assert [chunk.text for chunk in chunks] == ["one ", "two ", "three"]
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert all(isinstance(item, StreamChunk) for item in items[:-1])
    assert final.text == "one two three"
    assert final.usage == LLMUsage(12, 3, 2, 1)
    assert final.finish_reason == "stop"
    assert final.raw["usage"]["prompt_tokens"] == 12
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_stream_assembles_tool_calls() -> None:
    calls = [("c1", "weather", '{"city": "Oslo"}'), ("c2", "weather", '{"city": "Rome"}')]
    with openai_server([Answer.calls(*calls)]) as server:
        items = list(client(server.base_url).stream(ask("both")))
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.tool_calls == tuple(ToolCall(*call) for call in calls)
    assert final.finish_reason == "tool_calls"
    assert final.text == ""


def test_stream_rate_limit_is_mapped() -> None:
    with (
        openai_server([Answer.error(429, retry_after="3")]) as server,
        pytest.raises(ModelRateLimitError) as caught,
    ):
        list(client(server.base_url).stream(ask("hi")))
    assert caught.value.retry_after == 3.0


def test_defaults_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with openai_server(["from env"]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        response = OpenAIClient("gpt-env").request(ask("hi"))
    assert response.text == "from env"
    assert server.headers[0]["authorization"] == "Bearer sk-env"


def test_base_url_without_key_sends_a_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with openai_server(["local"]) as server:
        assert OpenAIClient("llama", base_url=server.base_url).request(ask("hi")).text == "local"


def test_no_key_and_no_base_url_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIClient("gpt-4o")


def test_protocol_properties() -> None:
    from legato.ai.types import ModelClient

    model = OpenAIClient("gpt-x", base_url="http://127.0.0.1:9/v1", api_key="k")
    assert isinstance(model, ModelClient)
    assert (model.provider, model.model) == ("openai", "gpt-x")
