"""A real local HTTP server speaking Anthropic's messages API, for offline tests.

    with anthropic_server([Reply.text("hi"), Reply.error(529)]) as server:
        client = AnthropicClient("claude-test", base_url=server.base_url, api_key="k")

Each POST to ``/v1/messages`` takes the next scripted `Reply` (``push`` adds more;
HTTP 400 when none is left); every JSON body received is kept in ``requests``. A
request with ``"stream": true`` gets the API's server-sent events (message_start,
content blocks with text and input_json deltas, message_delta with the usage,
message_stop).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from openai_server import ScriptedServer

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer: content blocks (text, tool_use) or an HTTP error."""

    text: str = ""
    # (id, name, input)
    tool_uses: tuple[tuple[str, str, Mapping[str, Any]], ...] = ()
    input_tokens: int = 10
    output_tokens: int = 5
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    stop_reason: str | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = ""

    @classmethod
    def reply(cls, text: str, **usage: Any) -> Reply:
        return cls(text=text, **usage)

    @classmethod
    def uses(cls, *uses: tuple[str, str, Mapping[str, Any]], text: str = "", **usage: Any) -> Reply:
        return cls(text=text, tool_uses=tuple(uses), stop_reason="tool_use", **usage)

    @classmethod
    def error(
        cls, status: int, message: str = "scripted failure", *, retry_after: str | None = None
    ) -> Reply:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        return cls(status=status, headers=headers, message=message)

    def blocks(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if self.text:
            blocks.append({"type": "text", "text": self.text})
        for ident, name, arguments in self.tool_uses:
            blocks.append({"type": "tool_use", "id": ident, "name": name, "input": arguments})
        return blocks

    def usage(self, output_tokens: int | None = None) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens if output_tokens is None else output_tokens,
        }
        if self.cache_read_input_tokens is not None:
            usage["cache_read_input_tokens"] = self.cache_read_input_tokens
        if self.cache_creation_input_tokens is not None:
            usage["cache_creation_input_tokens"] = self.cache_creation_input_tokens
        return usage


class AnthropicServer(ScriptedServer):
    path = "/v1/messages"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, handler: Any, body: dict[str, Any], answer: Any) -> None:
        if isinstance(answer, str):
            answer = Reply.reply(answer)
        if answer is None:
            answer = Reply.error(400, "no scripted answer left")
        if answer.status != 200:
            error = {"type": ERROR_TYPES.get(answer.status, "api_error"), "message": answer.message}
            payload = {"type": "error", "error": error}
            self.send_json(handler, answer.status, payload, answer.headers)
            return
        model = body.get("model", "unknown")
        stop_reason = answer.stop_reason or "end_turn"
        if body.get("stream"):
            self.send_events(handler, _events(answer, model, stop_reason))
            return
        payload = {
            "id": f"msg_{len(self.requests)}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": answer.blocks(),
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": answer.usage(),
        }
        self.send_json(handler, 200, payload)


def _events(answer: Reply, model: str, stop_reason: str) -> Iterator[str]:
    def event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

    start = {
        "id": "msg_stream",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": answer.usage(output_tokens=1),
    }
    yield event("message_start", {"message": start})
    index = 0
    if answer.text:
        yield event(
            "content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}
        )
        words = answer.text.split(" ")
        for piece in [word + " " for word in words[:-1]] + [words[-1]]:
            delta = {"type": "text_delta", "text": piece}
            yield event("content_block_delta", {"index": index, "delta": delta})
        yield event("content_block_stop", {"index": index})
        index += 1
    for ident, name, arguments in answer.tool_uses:
        block = {"type": "tool_use", "id": ident, "name": name, "input": {}}
        yield event("content_block_start", {"index": index, "content_block": block})
        text = json.dumps(arguments)
        half = len(text) // 2
        for part in (text[:half], text[half:]):
            delta = {"type": "input_json_delta", "partial_json": part}
            yield event("content_block_delta", {"index": index, "delta": delta})
        yield event("content_block_stop", {"index": index})
        index += 1
    yield event(
        "message_delta",
        {
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": answer.output_tokens},
        },
    )
    yield event("message_stop", {})


@contextmanager
def anthropic_server(script: Iterable[Reply | str] = ()) -> Iterator[AnthropicServer]:
    """A running `AnthropicServer` on 127.0.0.1 (a free port) for the ``with`` block."""
    server = AnthropicServer(script)
    server.start()
    try:
        yield server
    finally:
        server.stop()
