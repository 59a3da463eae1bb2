"""``GET /api/runs/{id}/llm_stream``: server-sent partial text of streamed model calls."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

import legato
from legato import ai
from legato.ai.testing import FakeModel
from legato.client import Client
from legato.server import create_app
from legato.testing import run_flow

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(create_app(Client())) as http:
        yield http


def test_the_stream_sends_the_texts_then_ends_with_the_run_state(api: TestClient) -> None:
    fake = FakeModel.returning(["streamed answer"])

    @legato.flow
    def chat() -> str:
        return "".join(ai.call(fake, "hi", stream=True))

    run = run_flow(chat).raise_for_state()
    store = Client().store
    assert store.list_llm_streams(run.run_id) == []  # removed when the call ended
    # What a crash mid-stream leaves behind is sent, and the stream still ends.
    store.write_llm_stream(run.run_id, "llm[0]", "cut <b>short", now=datetime.now(UTC))
    with api.stream("GET", f"/api/runs/{run.run_id[:8]}/llm_stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    assert body == (
        'event: streams\ndata: [{"call_key": "llm[0]", "text": "cut <b>short"}]\n\n'
        'event: end\ndata: {"state": "completed"}\n\n'
    )
    head = api.head(f"/api/runs/{run.run_id}/llm_stream")
    assert head.status_code == 200
    assert api.get("/api/runs/ffffffff/llm_stream").status_code == 404
