"""resolve_model: what each accepted form becomes; and that legato loads no provider
package until a client is built."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from legato.ai.providers import (
    AnthropicClient,
    OpenAIClient,
    PydanticAIModelClient,
    close_clients,
    resolve_model,
)
from legato.ai.types import ModelRequest, ModelResponse, StreamChunk
from legato.errors import ConfigurationError


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-test")


class Custom:
    provider = "custom"
    model = "custom-1"

    def request(self, request: ModelRequest) -> ModelResponse:
        raise NotImplementedError

    def stream(self, request: ModelRequest) -> Iterator[StreamChunk | ModelResponse]:
        raise NotImplementedError


def test_a_model_client_is_returned_as_is() -> None:
    custom = Custom()
    assert resolve_model(custom) is custom
    client = OpenAIClient("gpt-x")
    assert resolve_model(client) is client


def test_strings() -> None:
    bare = resolve_model("gpt-4o-mini")
    assert isinstance(bare, OpenAIClient)
    assert (bare.provider, bare.model) == ("openai", "gpt-4o-mini")
    prefixed = resolve_model("openai:llama3:8b")
    assert isinstance(prefixed, OpenAIClient)
    assert prefixed.model == "llama3:8b"
    claude = resolve_model("anthropic:claude-sonnet-4-5")
    assert isinstance(claude, AnthropicClient)
    assert (claude.provider, claude.model) == ("anthropic", "claude-sonnet-4-5")
    other = resolve_model("openai-chat:gpt-x")  # a prefix only pydantic-ai knows
    assert isinstance(other, PydanticAIModelClient)
    assert (other.provider, other.model) == ("openai", "gpt-x")
    assert type(other.wrapped).__name__ == "OpenAIChatModel"


def test_a_model_name_gets_one_shared_client_per_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = resolve_model("openai:gpt-4o-mini")
    assert resolve_model("openai:gpt-4o-mini") is first  # one connection pool, not one per call
    assert resolve_model("openai:gpt-4.1") is not first
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    moved = resolve_model("openai:gpt-4o-mini")
    assert moved is not first  # other settings, another client
    close_clients()
    assert resolve_model("openai:gpt-4o-mini") is not moved


def test_pydantic_ai_model_instances_are_wrapped() -> None:
    from pydantic_ai import messages as pai

    def answer(messages: list[pai.ModelMessage], info: AgentInfo) -> pai.ModelResponse:
        return pai.ModelResponse(parts=[pai.TextPart("ok")])

    function_model = FunctionModel(answer)
    client = resolve_model(function_model)
    assert isinstance(client, PydanticAIModelClient)
    assert client.wrapped is function_model
    test_model = TestModel()
    assert resolve_model(test_model).wrapped is test_model  # type: ignore[attr-defined]


@pytest.mark.parametrize("given", ["", "   ", 42, None, object()])
def test_anything_else_is_a_configuration_error(given: object) -> None:
    with pytest.raises(ConfigurationError, match="'openai:NAME'"):
        resolve_model(given)


def test_unknown_prefix_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="pydantic-ai cannot build"):
        resolve_model("nosuchprovider:model")


def test_import_legato_loads_no_provider_package() -> None:
    code = (
        "import json, sys\n"
        "import legato\n"
        "assert 'legato.ai' not in sys.modules\n"
        "assert callable(legato.ai.call) and callable(legato.ai.agent)  # loaded on first use\n"
        "import legato.ai.types, legato.ai.providers\n"
        "names = ('openai', 'anthropic', 'pydantic_ai')\n"
        "print(json.dumps([name for name in names if name in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert json.loads(out) == []
