"""Turning what users pass to `legato.ai.call` into a `ModelRequest`, and a recorded
answer into JSON and back (the store keeps answers as JSON text)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from legato._llm_records import LLMUsage
from legato.ai.types import Message, ModelResponse, OutputSpec, ToolCall, ToolSpec
from legato.errors import ConfigurationError

_ROLES = ("system", "user", "assistant", "tool")


def to_messages(messages: str | Sequence[Message | Mapping[str, Any]]) -> tuple[Message, ...]:
    """Messages from a plain string (one user message), `Message`s, or OpenAI-style dicts."""
    if isinstance(messages, str):
        return (Message("user", messages),)
    found: list[Message] = []
    for index, item in enumerate(messages):
        if isinstance(item, Message):
            found.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ConfigurationError(
                f"legato.ai.call: message {index} is a {type(item).__name__}; pass a "
                "legato.ai.Message or a dict like {'role': 'user', 'content': '...'}"
            )
        role = item.get("role")
        if role not in _ROLES:
            raise ConfigurationError(
                f"legato.ai.call: message {index} has role {role!r}; use one of {', '.join(_ROLES)}"
            )
        calls = tuple(
            ToolCall(str(c["id"]), str(c["function"]["name"]), str(c["function"]["arguments"]))
            if "function" in c
            else ToolCall(str(c["id"]), str(c["name"]), str(c["arguments"]))
            for c in item.get("tool_calls") or ()
        )
        found.append(
            Message(
                role,
                str(item.get("content") or ""),
                calls,
                item.get("tool_call_id"),
                item.get("name"),
            )
        )
    if not found:
        raise ConfigurationError("legato.ai.call: no messages given; pass a prompt or messages")
    return tuple(found)


def tool_spec(tool: Callable[..., Any] | ToolSpec) -> ToolSpec:
    """A tool offered to the model, from a function's signature and docstring."""
    if isinstance(tool, ToolSpec):
        return tool
    fn = getattr(tool, "fn", tool)  # a legato task: describe its function
    if not callable(fn):
        raise ConfigurationError(
            f"legato.ai.call: tool {tool!r} is not a function; pass functions or ToolSpec"
        )
    from pydantic import create_model

    fields: dict[str, Any] = {}
    for name, param in inspect.signature(fn).parameters.items():
        annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    name = str(getattr(tool, "name", None) or getattr(fn, "__name__", "tool"))
    schema = create_model(f"{name}_args", **fields).model_json_schema()
    return ToolSpec(name, inspect.getdoc(fn) or "", schema)


def output_spec(output_type: type[Any]) -> OutputSpec:
    from pydantic import TypeAdapter

    try:
        schema = TypeAdapter(output_type).json_schema()
    except Exception as exc:  # pydantic refuses the type: say which and why
        raise ConfigurationError(
            f"legato.ai.call: output_type {output_type!r} has no JSON schema ({exc}); "
            "pass a pydantic model or a type pydantic can validate"
        ) from exc
    return OutputSpec(getattr(output_type, "__name__", "output"), schema)


def message_json(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def response_to_json(response: ModelResponse) -> str:
    return json.dumps(
        {
            "text": response.text,
            "model": response.model,
            "finish_reason": response.finish_reason,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls
            ],
            "usage": {
                "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
                "cached_tokens": response.usage.cached_tokens,
                "reasoning_tokens": response.usage.reasoning_tokens,
            },
            "raw": response.raw,
        },
        default=str,
    )


def response_from_json(text: str) -> ModelResponse:
    data = json.loads(text)
    usage = data.get("usage") or {}
    return ModelResponse(
        text=data.get("text") or "",
        model=data.get("model") or "",
        usage=LLMUsage(
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
            int(usage.get("cached_tokens", 0)),
            int(usage.get("reasoning_tokens", 0)),
        ),
        finish_reason=data.get("finish_reason"),
        tool_calls=tuple(
            ToolCall(str(c["id"]), str(c["name"]), str(c["arguments"]))
            for c in data.get("tool_calls") or ()
        ),
        raw=data.get("raw") or {},
    )
