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

import os
import sys
import threading
from typing import Any

from legato.ai.providers.anthropic import AnthropicClient
from legato.ai.providers.openai import OpenAIClient
from legato.ai.providers.pydantic_ai import PydanticAIModelClient
from legato.ai.types import ModelClient
from legato.errors import ConfigurationError

__all__ = [
    "AnthropicClient",
    "OpenAIClient",
    "PydanticAIModelClient",
    "close_clients",
    "resolve_model",
]

# Clients built from model names, shared by every call of this process that names the
# same model with the same settings: one SDK client (and its connection pool) each,
# not one per call. Keyed by pid too: a forked worker child builds its own.
_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()

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
        return _shared_client(name)
    raise ConfigurationError(f"cannot use {model!r} as a model; give {ACCEPTED}")


def _build(name: str) -> ModelClient:
    prefix, colon, rest = name.partition(":")
    if not colon:
        return OpenAIClient(name)
    if prefix == "openai":
        return OpenAIClient(rest)
    if prefix == "anthropic":
        return AnthropicClient(rest)
    return PydanticAIModelClient(name)


def _shared_client(name: str) -> ModelClient:
    from legato import settings

    mark = (
        os.getpid(),
        name,
        settings.openai_base_url(),
        settings.openai_api_key(),
        settings.anthropic_base_url(),
        settings.anthropic_api_key(),
        settings.ai_timeout_seconds(),
    )
    with _clients_lock:
        client = _clients.get(mark)
        if client is None:
            client = _clients[mark] = _build(name)
    return client


def close_clients() -> None:
    """Close and forget the clients `resolve_model` built from model names."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        close = getattr(client, "close", None)
        if callable(close):
            close()


def _pydantic_ai_model(model: object) -> ModelClient | None:
    # Only a loaded pydantic-ai can have made a Model instance: never import it here.
    models = sys.modules.get("pydantic_ai.models")
    if models is not None and isinstance(model, models.Model):
        return PydanticAIModelClient(model)
    return None
