"""Streamed model calls (`call(..., stream=True)`) and async ones (`acall`), both backends."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from openai_server import Answer, openai_server

import legato
from legato import ai
from legato._llm_records import LLMUsage
from legato.ai.providers import OpenAIClient
from legato.ai.testing import FakeModel
from legato.ai.types import ModelRequest, ModelResponse, StreamChunk
from legato.errors import ModelRequestRejectedError, StoreError
from legato.states import StateType
from legato.store import get_default_store
from legato.testing import crash_at, resume, run_flow

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture(autouse=True)
def prices() -> Iterator[None]:
    ai.set_prices({"fake-model": {"input": 1.0, "output": 2.0}})
    yield
    ai.reset_prices()


class GatedModel:
    """Streams "a b c" and holds each later piece (and the end) until the test lets it
    through;
    with ``fail_after``, raises after that many pieces (a connection lost mid-stream)."""

    provider = "gated"
    model = "fake-model"

    def __init__(self, *, fail_after: int | None = None) -> None:
        self.gate = threading.Semaphore(0)
        self.fail_after = fail_after
        self.requests = 0

    def request(self, request: ModelRequest) -> ModelResponse:
        raise AssertionError("a streamed call must read the stream")

    def stream(self, request: ModelRequest) -> Iterator[StreamChunk | ModelResponse]:
        self.requests += 1
        fail_after, self.fail_after = self.fail_after, None
        for index, piece in enumerate(["a", " b", " c"]):
            if fail_after is not None and index == fail_after:
                raise ModelRequestRejectedError("gated: connection lost mid-stream")
            if index:
                self.gate.acquire()
            yield StreamChunk(piece)
        self.gate.acquire()
        yield ModelResponse(text="a b c", model=self.model, usage=LLMUsage(3, 3))


def wait_until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the streamed text to be written")
        time.sleep(0.02)


def test_iteration_yields_pieces_in_order_before_the_result() -> None:
    model = GatedModel()
    seen: list[tuple[str, bool]] = []

    store = get_default_store()
    shown: list[str] = []

    def partial_text_is(run_id: str, text: str) -> bool:
        found = store.list_llm_streams(run_id)
        return [(s.call_key, s.text) for s in found] == [("llm[0]", text)]

    @legato.flow
    def streamed() -> str:
        run_id = legato.get_run_context().flow_run_id
        so_far = ""
        with ai.call(model, "letters", stream=True) as stream:
            for piece in stream:
                seen.append((piece, stream.done()))
                so_far += piece
                # The run page's copy catches up with the text (throttled writes).
                wait_until(functools.partial(partial_text_is, run_id, so_far))
                shown.append(so_far)
                model.gate.release()  # the next piece comes only after this one arrived
        return stream.result.text

    run = run_flow(streamed).raise_for_state()
    assert run.result == "a b c"
    assert seen == [("a", False), (" b", False), (" c", False)]
    assert shown == ["a", "a b", "a b c"]
    assert [t.call_key for t in run.task_runs] == ["llm[0]"]
    assert get_default_store().list_llm_streams(run.run_id) == []  # removed once answered


def test_a_replayed_call_yields_its_recorded_text_as_one_piece() -> None:
    fake = FakeModel.returning(["one two three", "after"])
    pieces: list[list[str]] = []

    @legato.flow
    def twice() -> str:
        stream = ai.call(fake, "count", stream=True)
        pieces.append(list(stream))
        ai.call(fake, "next")
        return stream.result.text

    with crash_at("llm[1]"):
        crashed = run_flow(twice)
    assert crashed.state is None or crashed.state.type is not StateType.COMPLETED
    assert pieces == [["one", " two", " three"]]
    done = resume(crashed).raise_for_state()
    assert done.result == "one two three"
    assert pieces[1] == ["one two three"]
    # Each asked once: the crashed call's answer was recorded before the crash.
    assert len(fake.requests) == 2


def test_a_failure_mid_stream_then_resume_reissues_exactly_that_call() -> None:
    fake = FakeModel.returning(["first"])
    gated = GatedModel(fail_after=2)
    for _ in range(4):
        gated.gate.release()

    @legato.flow
    def story() -> list[str]:
        first = ai.call(fake, "one")
        stream = ai.call(gated, "two", stream=True, retries=0)
        text = "".join(stream)
        return [first.text, text]

    failed = run_flow(story)
    assert failed.state is not None and failed.state.type is StateType.FAILED
    assert "mid-stream" in (failed.state.message or "")
    done = resume(failed).raise_for_state()
    assert done.result == ["first", "a b c"]
    assert (len(fake.requests), gated.requests) == (1, 2)
    calls = get_default_store().list_llm_calls(done.run_id)
    assert [(c.call_key, c.try_number) for c in calls] == [("llm[0]", 1), ("llm[1]", 1)]


def test_acall_in_gather_keeps_deterministic_keys_across_a_resume() -> None:
    fake = FakeModel.returning(lambda request: "re: " + request.messages[-1].content)

    async def ask(topic: str) -> str:
        result = await ai.acall(fake, topic)
        return str(result.text)

    @legato.flow
    async def fan_out() -> list[str]:
        answers = await asyncio.gather(ask("x"), ask("y"), ask("z"))
        stream = await ai.acall(fake, "sum", stream=True)
        pieces = [piece async for piece in stream]
        return [*answers, "".join(pieces), stream.result.text]

    with crash_at("#2"):  # the second call to finish, whichever branch it is
        crashed = run_flow(fan_out)
    assert crashed.state is None or crashed.state.type is not StateType.COMPLETED
    done = resume(crashed).raise_for_state()
    assert done.result == ["re: x", "re: y", "re: z", "re: sum", "re: sum"]
    keys = sorted(t.call_key for t in done.task_runs)
    # Each branch's call is keyed in the branch's own scope, not by timing.
    assert len(keys) == 4 and keys[-1] == "llm[0]"
    assert all(k.startswith("ask[#") and k.endswith("]/llm[0]") for k in keys[:3])
    # The resume answered every call already asked from its record: 4 requests in all.
    assert len(fake.requests) == 4
    calls = get_default_store().list_llm_calls(done.run_id)
    assert sorted(c.call_key for c in calls) == keys


def test_the_openai_compatible_server_streams_through_the_client() -> None:
    with openai_server(
        [Answer(text="hello there world", pieces=("hel", "lo there", " world"))]
    ) as server:
        client = OpenAIClient("gpt-test", base_url=server.base_url, api_key="k")

        @legato.flow
        def chat() -> list[str]:
            stream = ai.call(client, "hi", stream=True)
            pieces = list(stream)
            return [*pieces, stream.result.text]

        run = run_flow(chat).raise_for_state()
        assert run.result == ["hel", "lo there", " world", "hello there world"]
        assert server.requests[0]["stream"] is True
    record = get_default_store().list_llm_calls(run.run_id)[0]
    assert (record.usage.input_tokens, record.usage.output_tokens) == (10, 5)


def test_a_failing_partial_text_write_is_logged_once_and_the_call_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = get_default_store()
    writes: list[str] = []

    def broken(flow_run_id: str, call_key: str, text: str, *, now: object) -> None:
        writes.append(text)
        raise StoreError("the store refused the partial text")

    monkeypatch.setattr(store, "write_llm_stream", broken)
    fake = FakeModel.returning(["one two three four"])

    @legato.flow
    def chat() -> str:
        return "".join(ai.call(fake, "hi", stream=True))

    run = run_flow(chat).raise_for_state()
    assert run.result == "one two three four"
    assert writes == ["one"]  # tried once, then no more
    lines = [log.message for log in store.read_logs(run.run_id)]
    said = [line for line in lines if "could not be written for the run page" in line]
    assert len(said) == 1 and "the store refused the partial text" in said[0]
