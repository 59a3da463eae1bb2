"""Helpers shared by the provider clients: ``Retry-After`` and HTTP error mapping.

Nothing here imports a provider package.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from legato.errors import (
    MissingExtraError,
    ModelError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    ModelUnavailableError,
)


def missing(package: str, purpose: str, error: ImportError) -> MissingExtraError:
    """The error for a provider package that is not installed."""
    failure = MissingExtraError("ai", package, purpose)
    failure.__cause__ = error
    return failure


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a 429 asked for: ``retry-after-ms`` (milliseconds) first, else
    ``Retry-After`` in seconds or as an HTTP date; None when neither is usable."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis)
        except ValueError:
            value = -1.0
        if value >= 0:
            return value / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return seconds if seconds >= 0 else None


def status_error(
    provider: str,
    model: str,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None,
) -> ModelError:
    """The legato error for an HTTP error status from a provider."""
    detail = detail.strip()
    if len(detail) > 500:
        detail = detail[:500] + "..."
    if status == 429:
        return ModelRateLimitError(
            provider, model, retry_after_seconds(headers), f"HTTP 429 {detail}".strip()
        )
    if status >= 500 or status == 408:
        return ModelUnavailableError(
            f"{provider} failed the request to {model} with HTTP {status}"
            f"{': ' + detail if detail else ''}; the call is retried under its task's "
            "retry options (raise retries= if the provider is often unavailable)"
        )
    return ModelRequestRejectedError(
        f"{provider} rejected the request to {model} with HTTP {status}"
        f"{': ' + detail if detail else ''}; retrying would fail the same way: check the "
        "API key, the model name and the request's parameters"
    )


def connection_error(provider: str, model: str, what: str) -> ModelUnavailableError:
    """The legato error for a request that got no HTTP answer (refused, reset, timed out)."""
    return ModelUnavailableError(
        f"the request to {provider} model {model} got no answer ({what}); check the base URL "
        "and the network (or raise LEGATO_AI_TIMEOUT_SECONDS); the call is retried under its "
        "task's retry options"
    )


class MappedErrors:
    """Turns a provider SDK's errors into legato's model errors. The openai and
    anthropic packages name theirs alike (``APIStatusError``, ``APITimeoutError``,
    ``APIConnectionError``); ``sdk`` is the package's name, imported only on an error."""

    def __init__(self, provider: str, model: str, sdk: str) -> None:
        self._provider = provider
        self._model = model
        self._sdk = sdk

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if error is None or isinstance(error, ModelError):
            return
        sdk = importlib.import_module(self._sdk)
        if isinstance(error, sdk.APIStatusError):
            headers: Mapping[str, str] = dict(error.response.headers.items())
            raise status_error(
                self._provider, self._model, error.status_code, error.message, headers
            ) from error
        if isinstance(error, sdk.APITimeoutError):
            raise connection_error(self._provider, self._model, "timed out") from error
        if isinstance(error, sdk.APIConnectionError):
            raise connection_error(
                self._provider, self._model, str(error) or "connection failed"
            ) from error


class SDKModelClient:
    """What the SDK-backed clients share: their provider's name, the model, the SDK
    client they call, and closing it. Subclasses set ``_model`` and ``_client``."""

    _provider = ""
    _model: str
    _client: Any

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model(self) -> str:
        return self._model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._model!r})"

    def close(self) -> None:
        """Close the SDK client's connections (a client made by `resolve_model` is
        shared by the process's calls: close those with `providers.close_clients`)."""
        self._client.close()
