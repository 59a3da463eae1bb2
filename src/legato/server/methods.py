"""HEAD and OPTIONS, answered the way HTTP says, for every route.

- HEAD works wherever GET does: the request runs as a GET (marked with
  ``HEAD_SCOPE_KEY`` in its scope, so an endless stream can end at once) and the
  answer keeps the GET's status and headers without its body.
- OPTIONS answers 204 with ``Allow`` listing every method of the path (a path
  served by several routes, such as GET, PUT and DELETE of a deployment, lists
  them all), and a 405 names the same methods, not just those of the first
  route that matched the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD_SCOPE_KEY = "legato.head"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class HttpMethods:
    """ASGI middleware: HEAD as a bodiless GET, true ``Allow`` on OPTIONS and 405."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    def allowed(self, scope: Scope) -> list[str]:
        """The methods some route serves at this path (empty: no such path).

        Asks each route whether it fully matches the path for each method, the
        routing's own question, so included routers count like plain routes."""
        methods: set[str] = set()
        for route in self.routes:
            if isinstance(route, Mount):  # static files: read only
                if route.matches(scope)[0] is not Match.NONE:
                    methods.update({"GET", "HEAD"})
                continue
            for method in _METHODS - methods:
                if route.matches({**scope, "method": method})[0] is Match.FULL:
                    methods.add(method)
        if not methods:
            return []
        if "GET" in methods:
            methods.add("HEAD")
        methods.add("OPTIONS")
        return sorted(methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "OPTIONS":
            allowed = self.allowed(scope)
            if allowed:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 204,
                        "headers": [(b"allow", ", ".join(allowed).encode())],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
        head = method == "HEAD"
        if head:
            scope = {**scope, "method": "GET", HEAD_SCOPE_KEY: True}

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                message = {**message, "headers": self._with_allow(scope, message)}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, answer)

    def _with_allow(self, scope: Scope, message: Message) -> list[Any]:
        headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
        allowed = self.allowed(scope)
        if allowed:
            headers.append((b"allow", ", ".join(allowed).encode()))
        return headers
