"""``POST /hooks/{slug}``: webhooks, authenticated by their own secret or signature.

The API token does not apply here (senders such as GitHub cannot send it); each
webhook has its own authentication (see `legato.engine.webhooks`). Answers 202
with the event id, 400 with the reason when the template renders no valid event,
401/403 on authentication failures, 404 for an unknown or disabled slug, 413 for
a body over 1 MiB.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from legato.client import Client
from legato.engine.webhooks import MAX_BODY_BYTES, WebhookRequest
from legato.errors import (
    ConfigurationError,
    WebhookAuthError,
    WebhookNotFoundError,
)
from legato.server.errors import error_responses

router = APIRouter(tags=["webhooks"])


def _error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None when it is over the limit (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/hooks/{slug}",
    status_code=202,
    summary="Receive a webhook: store the event its template makes of the request",
    responses={
        202: {"description": "Stored (or stored before, for a template that gives an id)."},
        400: {"description": "The template rendered no valid event: the reason."},
        **error_responses(401, 403, 404),
        413: {"description": "The body is over 1 MiB."},
    },
)
async def receive(slug: str, request: Request) -> JSONResponse:
    client: Client = request.app.state.client
    raw = await _read_body(request)
    if raw is None:
        return _error(413, "PayloadTooLarge", f"the body is over {MAX_BODY_BYTES} bytes; send less")
    received = WebhookRequest(
        raw_body=raw,
        headers=dict(request.headers),
        query=dict(request.query_params),
        method=request.method,
    )
    try:
        event, _new = await run_in_threadpool(client.receive_webhook, slug, received)
    except WebhookNotFoundError as exc:
        return _error(404, type(exc).__name__, str(exc))
    except WebhookAuthError as exc:
        return _error(exc.status, type(exc).__name__, str(exc))
    except ConfigurationError as exc:  # the template, the body or the event it made
        return _error(400, type(exc).__name__, str(exc))
    return JSONResponse({"id": event.id}, status_code=202)
