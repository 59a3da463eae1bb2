"""Model provider clients implementing `legato.ai.types.ModelClient`.

- `OpenAIClient`: OpenAI's chat-completions API or any OpenAI-compatible server (vLLM,
  Ollama, LM Studio...), on the ``openai`` package.
- `AnthropicClient`: Anthropic's messages API, on the ``anthropic`` package.
- `PydanticAIModelClient`: any model pydantic-ai supports, on ``pydantic_ai``.

`resolve_model` turns what a user wrote (``"openai:gpt-4o-mini"``, a client, a
pydantic-ai model) into a client. Importing this package imports none of the
provider packages: each client imports its package when it is built.
"""

from __future__ import annotations

import sys
from typing import Any

from legato.ai.providers.anthropic import AnthropicClient
from legato.ai.providers.openai import OpenAIClient
from legato.ai.providers.pydantic_ai import PydanticAIModelClient
from legato.ai.types import ModelClient
from legato.errors import ConfigurationError

__all__ = ["AnthropicClient", "OpenAIClient", "PydanticAIModelClient", "resolve_model"]

ACCEPTED = (
    "a model name ('gpt-4o-mini', sent to the OpenAI-compatible endpoint), "
    "'openai:NAME', 'anthropic:NAME', any pydantic-ai model name such as "
    "'groq:llama-3.3-70b-versatile', a pydantic-ai Model, or a ModelClient"
)


def resolve_model(model: str | ModelClient | Any) -> ModelClient:
    """The client for ``model``.

    A `ModelClient` is returned as it is; a pydantic-ai ``Model`` is wrapped in a
    `PydanticAIModelClient`. A string ``"openai:NAME"`` builds an `OpenAIClient`,
    ``"anthropic:NAME"`` an `AnthropicClient`, any other ``"PREFIX:NAME"`` a
    `PydanticAIModelClient` (pydantic-ai knows the prefix), and a bare name with no
    prefix an `OpenAIClient`: OpenAI-compatible endpoints (``OPENAI_BASE_URL``) are the
    common case. A name that holds a colon itself (Ollama's ``llama3:8b``) needs its
    prefix: ``"openai:llama3:8b"``.
    """
    wrapped = _pydantic_ai_model(model)
    if wrapped is not None:
        return wrapped
    if isinstance(model, ModelClient):
        return model
    if isinstance(model, str):
        name = model.strip()
        if not name:
            raise ConfigurationError(f"the model name is empty; give {ACCEPTED}")
        prefix, colon, rest = name.partition(":")
        if not colon:
            return OpenAIClient(name)
        if prefix == "openai":
            return OpenAIClient(rest)
        if prefix == "anthropic":
            return AnthropicClient(rest)
        return PydanticAIModelClient(name)
    raise ConfigurationError(f"cannot use {model!r} as a model; give {ACCEPTED}")


def _pydantic_ai_model(model: object) -> ModelClient | None:
    # Only a loaded pydantic-ai can have made a Model instance: never import it here.
    models = sys.modules.get("pydantic_ai.models")
    if models is not None and isinstance(model, models.Model):
        return PydanticAIModelClient(model)
    return None
