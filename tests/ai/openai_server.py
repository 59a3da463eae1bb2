"""A real local HTTP server speaking the OpenAI chat-completions API, for offline tests.

    with openai_server([Answer.text("hi"), Answer.error(429, retry_after="2")]) as server:
        client = OpenAIClient("gpt-test", base_url=server.base_url, api_key="k")
        ...
        assert len(server.requests) == 2

Each POST to ``/v1/chat/completions`` takes the next scripted `Answer` (``push`` adds
more); when none is left it answers HTTP 400 "no scripted answer left". Every request
body received is kept in ``requests`` (JSON) in arrival order. A request with
``"stream": true`` gets server-sent events: a role chunk, the text in pieces, tool-call
deltas, a finish chunk, a usage chunk when ``stream_options.include_usage`` is set,
then ``data: [DONE]``.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    """One scripted answer: a completion (text and/or tool calls) or an HTTP error."""

    text: str = ""
    # (id, name, arguments JSON text)
    tool_calls: tuple[tuple[str, str, str], ...] = ()
    input_tokens: int = 10
    output_tokens: int = 5
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = ""
    # text pieces per stream chunk (split into words when None)
    pieces: tuple[str, ...] | None = None

    @classmethod
    def reply(cls, text: str, **usage: Any) -> Answer:
        return cls(text=text, **usage)

    @classmethod
    def calls(cls, *calls: tuple[str, str, str], text: str = "", **usage: Any) -> Answer:
        return cls(text=text, tool_calls=tuple(calls), finish_reason="tool_calls", **usage)

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "scripted failure",
        *,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
    ) -> Answer:
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        return cls(status=status, headers=headers, message=message)

    def text_pieces(self) -> list[str]:
        if self.pieces is not None:
            return list(self.pieces)
        words = self.text.split(" ")
        return [word + " " for word in words[:-1]] + [words[-1]] if self.text else []


class ScriptedServer:
    """A threaded HTTP server answering POSTs from a script of answers; subclassed
    per API. ``requests`` holds every JSON body received, ``headers`` their headers."""

    path = "/"

    def __init__(self, script: Iterable[Any] = ()) -> None:
        self._answers: deque[Any] = deque(script)
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != outer.path:
                    self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                    return
                with outer._lock:
                    outer.requests.append(body)
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                    answer = outer._answers.popleft() if outer._answers else None
                outer.answer(self, body, answer)

            def _send(self, status: int, payload: Any, headers: Mapping[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._handler = Handler
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def push(self, answer: Any) -> None:
        """Add an answer at the end of the script."""
        with self._lock:
            self._answers.append(answer)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # -- answering helpers for subclasses --
    def answer(self, handler: Any, body: dict[str, Any], answer: Any) -> None:
        raise NotImplementedError

    @staticmethod
    def send_json(
        handler: Any, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        handler._send(status, payload, headers or {})

    @staticmethod
    def send_events(handler: Any, events: Iterable[str]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        for event in events:
            handler.wfile.write(event.encode())
            handler.wfile.flush()
        handler.close_connection = True


class OpenAIServer(ScriptedServer):
    path = "/v1/chat/completions"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, handler: Any, body: dict[str, Any], answer: Any) -> None:
        if isinstance(answer, str):
            answer = Answer.reply(answer)
        if answer is None:
            answer = Answer.error(400, "no scripted answer left")
        if answer.status != 200:
            error = {"message": answer.message, "type": "scripted", "code": str(answer.status)}
            self.send_json(handler, answer.status, {"error": error}, answer.headers)
            return
        model = body.get("model", "unknown")
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self.send_events(handler, _stream_events(answer, model, include_usage))
            return
        message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
        if answer.tool_calls:
            message["tool_calls"] = [
                {"id": ident, "type": "function", "function": {"name": name, "arguments": args}}
                for ident, name, args in answer.tool_calls
            ]
        payload = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": answer.finish_reason or "stop",
                    "logprobs": None,
                }
            ],
            "usage": _usage(answer),
        }
        self.send_json(handler, 200, payload)


def _usage(answer: Answer) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }
    if answer.cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": answer.cached_tokens}
    if answer.reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": answer.reasoning_tokens}
    return usage


def _stream_events(answer: Answer, model: str, include_usage: bool) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        payload = {
            "id": "chatcmpl-stream",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in answer.text_pieces():
        yield chunk({"content": piece})
    for index, (ident, name, args) in enumerate(answer.tool_calls):
        head = {"index": index, "id": ident, "type": "function"}
        head["function"] = {"name": name, "arguments": ""}
        yield chunk({"tool_calls": [head]})
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield chunk({}, answer.finish_reason or "stop")
    if include_usage:
        payload = {
            "id": "chatcmpl-stream",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [],
            "usage": _usage(answer),
        }
        yield f"data: {json.dumps(payload)}\n\n"
    yield "data: [DONE]\n\n"


@contextmanager
def openai_server(script: Iterable[Answer | str] = ()) -> Iterator[OpenAIServer]:
    """A running `OpenAIServer` on 127.0.0.1 (a free port) for the ``with`` block."""
    server = OpenAIServer(script)
    server.start()
    try:
        yield server
    finally:
        server.stop()
