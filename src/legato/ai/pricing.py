"""Turning token usage into dollars: a price table per model, user-overridable.

Prices are USD per million tokens. ``cached`` is the price of input tokens served
from the provider's prompt cache (they are part of the input count, so they are
billed at the cached price instead of the input price). Reasoning tokens are part
of the output count and billed as output. The built-in table holds a few common
models as their providers listed them in 2025; prices change, so set yours with
`set_prices` or a JSON file named by ``LEGATO_AI_PRICES``
(``{"model-name": {"input": 0.4, "output": 1.6, "cached": 0.1}}``). A model
without a price is recorded with no cost (and said once in the run's logs).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from legato._llm_records import LLMUsage
from legato.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached: float | None = None  # None: cached input tokens cost the input price

    def cost(self, usage: LLMUsage) -> float:
        cached_price = self.input if self.cached is None else self.cached
        uncached = max(usage.input_tokens - usage.cached_tokens, 0)
        return (
            uncached * self.input + usage.cached_tokens * cached_price
        ) / 1e6 + usage.output_tokens * self.output / 1e6


_BUILT_IN: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "claude-3-5-haiku": Price(0.80, 4.00, 0.08),
    "claude-sonnet-4": Price(3.00, 15.00, 0.30),
    "claude-opus-4": Price(15.00, 75.00, 1.50),
}

_lock = threading.Lock()
_overrides: dict[str, Price] = {}
_file_loaded = False


def _as_price(name: str, value: Price | Mapping[str, Any]) -> Price:
    if isinstance(value, Price):
        return value
    if not isinstance(value, Mapping) or "input" not in value or "output" not in value:
        raise ConfigurationError(
            f"price for model {name!r} must be a legato.ai.Price or a mapping with 'input' and "
            f"'output' (USD per million tokens) and optionally 'cached', got {value!r}"
        )
    try:
        cached = value.get("cached")
        return Price(
            float(value["input"]),
            float(value["output"]),
            None if cached is None else float(cached),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"price for model {name!r} is not a number: {exc}") from exc


def set_prices(prices: Mapping[str, Price | Mapping[str, Any]]) -> None:
    """Set (or replace) the price of models, by model name (a name also prices the
    dated variants that start with it: "gpt-4o-mini" prices "gpt-4o-mini-2024-07-18")."""
    checked = {str(name): _as_price(str(name), value) for name, value in prices.items()}
    with _lock:
        _overrides.update(checked)


def reset_prices() -> None:
    """Forget prices set by `set_prices` (the file and the built-in table remain)."""
    global _file_loaded
    with _lock:
        _overrides.clear()
        _file_loaded = False


def _load_file() -> None:
    global _file_loaded
    from legato.settings import ai_prices_file

    path = ai_prices_file()
    _file_loaded = True
    if path is None:
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"LEGATO_AI_PRICES={path}: cannot read a JSON price table ({exc}); fix the file "
            "or unset the variable"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"LEGATO_AI_PRICES={path}: expected a JSON object of models")
    for name, value in data.items():
        _overrides.setdefault(str(name), _as_price(str(name), value))


def price_of(model: str) -> Price | None:
    """The price of ``model``: an exact name first, then the longest name it starts with."""
    with _lock:
        if not _file_loaded:
            _load_file()
        table = {**_BUILT_IN, **_overrides}
    if model in table:
        return table[model]
    best = max((name for name in table if model.startswith(name)), key=len, default=None)
    return table[best] if best is not None else None


def cost_of(model: str, usage: LLMUsage) -> float | None:
    price = price_of(model)
    return None if price is None else price.cost(usage)
