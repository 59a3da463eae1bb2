"""A task call's arguments in a canonical, comparable form.

Replay hands a recorded result to the call made at the same call key. If
the flow's code or timing made a different call land on that key, the
recorded result would be silently wrong; comparing the arguments catches it.

The fingerprint is a short text: values that have a stable meaning across
processes (numbers, strings, containers of them, dates, enums, dataclasses,
pydantic models, futures by their call key) are spelled out; anything else
counts by its type only, since its repr may hold a memory address or a
clock reading and would fail a correct replay. Long texts end in a digest.
The common case, a few small scalars, is one ``repr`` of a tuple.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any
from uuid import UUID

# Beyond this many characters a fingerprint keeps a prefix (for the error
# message) and a digest of the whole.
MAX_CHARS = 240
# At most this many values are spelled out per call; the rest count by length.
MAX_NODES = 1_000
# A str or bytes longer than this counts by its digest.
MAX_TEXT = 512

_SCALARS = frozenset({int, float, str, bool, type(None)})
_STABLE_REPR = (datetime, date, time, timedelta, Decimal, UUID, PurePath)


def fingerprint(names: Sequence[str], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """The canonical form of a call with ``args`` and ``kwargs`` to a function whose
    parameters are ``names``: positional and keyword spellings of one call agree."""
    if len(args) == 1 and not kwargs:  # the most common call, at the cost of one repr
        only = args[0]
        kind = type(only)
        if kind is int or kind is bool or kind is float or (kind is str and len(only) <= 80):
            return f"({only!r},)"
    if (
        not kwargs
        and len(args) <= 8
        and all(type(a) in _SCALARS and (type(a) is not str or len(a) <= MAX_TEXT) for a in args)
    ):
        return _bounded(repr(args))
    bound: dict[str, Any] = {}
    for i, value in enumerate(args):
        bound[names[i] if i < len(names) else f"args[{i}]"] = value
    bound.update(kwargs)
    if all(type(v) in _SCALARS for v in bound.values()) and len(bound) <= 8:
        ordered = tuple(bound[n] for n in names if n in bound)
        extra = sorted((k, v) for k, v in bound.items() if k not in names)
        if not extra and all(type(v) is not str or len(v) <= MAX_TEXT for v in ordered):
            return _bounded(repr(ordered))
    budget = [MAX_NODES]
    parts = [_canon(bound[n], budget) for n in names if n in bound]
    parts += [f"{k}={_canon(bound[k], budget)}" for k in sorted(bound) if k not in names]
    return _bounded("(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")")


def _bounded(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    digest = _digest(text.encode("utf-8", "surrogatepass"))
    return f"{text[: MAX_CHARS - 24]}…#{digest}"


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=10).hexdigest()


def name_of(kind: type) -> str:
    return kind.__qualname__


def _items(values: Any, budget: list[int], spell: Any) -> str:
    """The spelled items of a container, until the budget runs out; then its length."""
    out = []
    for item in values:
        if budget[0] <= 0:
            out.append(f"…(len={len(values)})")
            break
        out.append(spell(item))
    return ", ".join(out)


def _canon(value: Any, budget: list[int]) -> str:
    budget[0] -= 1
    kind = type(value)
    if kind in _SCALARS:
        if kind is str and len(value) > MAX_TEXT:
            return f"str(len={len(value)})#{_digest(value.encode('utf-8', 'surrogatepass'))}"
        return repr(value)
    if kind in (bytes, bytearray):
        if len(value) > MAX_TEXT:
            return f"bytes(len={len(value)})#{_digest(bytes(value))}"
        return repr(bytes(value))
    if budget[0] <= 0:
        size = len(value) if hasattr(value, "__len__") else "?"
        return f"{kind.__qualname__}(len={size})"
    sequence = isinstance(value, (list, tuple)) and not hasattr(value, "_fields")
    if kind in (list, tuple) or sequence:
        inner = _items(value, budget, lambda v: _canon(v, budget))
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, dict):
        pairs = value.items()
        return (
            "{"
            + _items(pairs, budget, lambda kv: f"{_canon(kv[0], budget)}: {_canon(kv[1], budget)}")
            + "}"
        )
    if isinstance(value, (set, frozenset)):
        if len(value) > budget[0]:
            return f"{name_of(kind)}(len={len(value)})"
        return "{" + ", ".join(sorted(_canon(v, budget) for v in value)) + "}"
    if isinstance(value, Enum):
        return f"{kind.__qualname__}.{value.name}"
    if isinstance(value, _STABLE_REPR):
        return repr(value)
    name = kind.__qualname__
    if isinstance(value, (FunctionType, BuiltinFunctionType, MethodType, type)):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', '?')}"
    if kind.__name__ == "LegatoFuture":
        return f"<future {value.call_key}>"
    if dataclasses.is_dataclass(value):
        fields = ", ".join(
            f"{f.name}={_canon(getattr(value, f.name), budget)}" for f in dataclasses.fields(value)
        )
        return f"{name}({fields})"
    if hasattr(kind, "model_fields") and hasattr(value, "__dict__"):  # a pydantic model
        fields = ", ".join(f"{k}={_canon(v, budget)}" for k, v in vars(value).items())
        return f"{name}({fields})"
    if hasattr(value, "_fields"):  # a named tuple
        return f"{name}({', '.join(_canon(v, budget) for v in value)})"
    return f"<{kind.__module__}.{name}>"
