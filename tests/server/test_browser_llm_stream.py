"""A streamed model call's text on the run page, live, in a real browser (headless
Chromium against a real `legato server`); the flow runs in this test's process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _browser_support import Stack, expect_state, wait_for
from _browser_support import screenshot as save_screenshot

import legato
from legato import ai
from legato.ai.testing import FakeModel
from legato.ai.types import ModelRequest, ModelResponse, StreamChunk
from legato.client import Client
from legato.testing import RunResult, run_flow

ANSWER = "Dear customer, your refund was approved today and is on its way"


class HeldModel:
    """`FakeModel` streaming slowly (``stream_delay``) that holds its final answer until
    the test lets it go: the call is in flight for as long as the test looks."""

    provider = "fake"
    model = "fake-model"

    def __init__(self) -> None:
        self.fake = FakeModel(stream_delay=0.05).returning([ANSWER])
        self.started = threading.Event()
        self.release = threading.Event()

    def request(self, request: ModelRequest) -> ModelResponse:
        return self.fake.request(request)

    def stream(self, request: ModelRequest) -> Iterator[StreamChunk | ModelResponse]:
        self.started.set()
        for piece in self.fake.stream(request):
            if isinstance(piece, ModelResponse) and not self.release.wait(120):
                raise TimeoutError("the test never released the held answer")
            yield piece


def test_partial_text_shows_live_then_the_final_text(
    stack: Stack, page: Any, tmp_path: Path
) -> None:
    model = HeldModel()

    @legato.flow
    def reply() -> str:
        with ai.call(model, "Draft a reply", stream=True) as stream:
            text = "".join(stream)
        return text

    done: list[RunResult] = []
    runner = threading.Thread(target=lambda: done.append(run_flow(reply)), daemon=True)
    runner.start()
    try:
        assert model.started.wait(60), "the flow never called the model"
        run = Client().list_runs(limit=1, flow_name="reply")[0]
        page.goto(f"{stack.url}/runs/{run.id}")
        live = page.locator("#llm-live")
        live.wait_for(state="visible")
        # The whole text streamed, while the call is still in flight (held).
        page.locator("#llm-live pre").filter(has_text="on its way").wait_for()
        assert page.locator("#llm-live pre").inner_text() == ANSWER
        assert not done
        assert page.locator("#llm-live code").inner_text() == "llm[0]"
        save_screenshot(page, tmp_path / "screenshots", "llm-live")
    finally:
        model.release.set()
        runner.join(120)
    assert done and done[0].result == ANSWER
    live.wait_for(state="hidden")
    expect_state(page, "completed")
    wait_for(lambda: ANSWER in page.content(), "the final text is on the page")
