"""Every provider client a test builds is closed when the test ends, so no SDK
connection is left for the garbage collector (warnings are errors here)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from legato.ai import providers
from legato.ai.providers import AnthropicClient, OpenAIClient


@pytest.fixture(autouse=True)
def close_provider_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    built: list[Any] = []
    for cls in (OpenAIClient, AnthropicClient):
        original = cls.__init__

        def tracking(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            __original(self, *args, **kwargs)
            built.append(self)

        monkeypatch.setattr(cls, "__init__", tracking)
    yield
    providers.close_clients()
    for client in built:
        client.close()
