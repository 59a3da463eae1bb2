"""``GET /api/runs/{id}/llm_stream``: the text so far of a run's streamed model calls.

Server-sent events for the run page's live box: ``streams`` (data: a JSON list of
``{"call_key", "text"}``, every call in flight) each time that list changes, then
``end`` (data: the run's final state). The flow's process writes the texts to the
store as the model streams (`legato.engine.llm_stream`); this reads them back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from legato.client import Client
from legato.server.api import ClientDep
from legato.server.errors import error_responses
from legato.server.methods import HEAD_SCOPE_KEY
from legato.server.security import require_token

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(require_token)],
    tags=["ai"],
    responses=error_responses(401, 403, 422, 503),
)

#: How often the store is read for new text, in seconds (the writer throttles to 0.1 s).
POLL_SECONDS = 0.25

_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["streams", "end"]},
        "data": {"type": "string"},
    },
    "required": ["event", "data"],
}


def _texts(client: Client, run_id: str) -> list[dict[str, Any]]:
    return [{"call_key": s.call_key, "text": s.text} for s in client.store.list_llm_streams(run_id)]


@router.get(
    "/runs/{run_id}/llm_stream",
    response_class=StreamingResponse,
    responses={
        **error_responses(404, 409),
        200: {
            "description": "Server-sent events: 'streams' (data: a JSON list of "
            '{"call_key", "text"}, the model calls in flight and their text so far) '
            "whenever it changes, then 'end' (data: the run's final state).",
            "content": {"text/event-stream": {"schema": _EVENT}},
        },
    },
)
async def stream_llm_text(request: Request, run_id: str, client: ClientDep) -> StreamingResponse:
    """Server-sent events: the text of the run's streamed model calls as it grows."""
    run = await run_in_threadpool(client.resolve_run, run_id)
    if request.scope.get(HEAD_SCOPE_KEY):  # HEAD: the headers, not an endless stream
        return StreamingResponse(iter(()), media_type="text/event-stream")

    async def events() -> AsyncIterator[str]:
        # Store calls go to the thread pool, as for the log stream.
        sent: list[dict[str, Any]] | None = None
        while True:
            texts = await run_in_threadpool(_texts, client, run.id)
            if texts != sent:
                sent = texts
                yield f"event: streams\ndata: {json.dumps(texts)}\n\n"
            # A run that crashed mid-stream leaves its text behind: the end is the run's.
            current = await run_in_threadpool(client.get_run, run.id)
            if current.state.is_final:
                yield f"event: end\ndata: {json.dumps({'state': current.state.value})}\n\n"
                return
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(events(), media_type="text/event-stream")
