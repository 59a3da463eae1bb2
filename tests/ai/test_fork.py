"""Forking a run from a model call: what replays, what is asked again (both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import legato
from legato import ai
from legato.ai.testing import FakeModel
from legato.client import Client
from legato.errors import ConfigurationError, RunStateError
from legato.states import StateType
from legato.store import get_default_store
from legato.testing import run_flow

pytestmark = pytest.mark.usefixtures("backend")

PRICE = {"fake-model": {"input": 1.0, "output": 2.0}}


@pytest.fixture(autouse=True)
def prices() -> Iterator[None]:
    ai.set_prices(PRICE)
    yield
    ai.reset_prices()


def test_a_fork_from_a_call_replays_the_calls_before_it_and_asks_the_rest_again() -> None:
    fake = FakeModel.returning(["a", "b", "c", "d", "c2", "d2"])
    prompts = {"ask": ai.Prompt("ask", "Question {n}: what next?")}
    steps: list[str] = []

    @legato.task
    def prepare(topic: str) -> str:
        steps.append("prepare")
        return topic.upper()

    @legato.flow
    def chain(topic: str) -> list[str]:
        answers = [prepare(topic)]
        for n in range(4):
            answers.append(ai.call(fake, prompts["ask"](n=n)).output)
        return answers

    source = run_flow(chain, topic="tickets").raise_for_state()
    assert len(fake.requests) == 4
    old_version = prompts["ask"].version
    prompts["ask"] = ai.Prompt("ask", "Question {n}: what comes next, briefly?")

    client = Client(get_default_store())
    fork = client.fork_run(source.run_id, "llm[2]", flow=chain)

    assert fork.state is StateType.COMPLETED, fork.state_message
    assert fork.id != source.run_id
    assert client.run_result(fork.id) == ["TICKETS", "a", "b", "c2", "d2"]
    assert f"forked-from:{source.run_id}" in fork.tags
    # llm[0], llm[1] and prepare[0] replayed: two more requests, one prepare body.
    assert len(fake.requests) == 6
    assert steps == ["prepare"]
    assert "what comes next, briefly" in fake.requests[4].messages[-1].content

    store = get_default_store()
    before = {r.call_key: r for r in store.list_llm_calls(source.run_id)}
    tries = store.list_llm_calls(fork.id)
    assert [(r.call_key, r.copied_from) for r in tries] == [
        ("llm[0]", source.run_id),
        ("llm[1]", source.run_id),
        ("llm[2]", None),
        ("llm[3]", None),
    ]
    for copied in tries[:2]:
        assert copied.cost_usd == before[copied.call_key].cost_usd
        assert copied.prompt_version == old_version
    assert {r.prompt_version for r in tries[2:]} == {prompts["ask"].version}
    assert [v.version for v in client.prompt_versions("ask")] == [
        prompts["ask"].version,
        old_version,
    ]
    assert sorted(t.call_key for t in store.list_task_runs(fork.id)) == [
        "llm[0]",
        "llm[1]",
        "llm[2]",
        "llm[3]",
        "prepare[0]",
    ]
    logs = [line.message for line in client.read_logs(fork.id)]
    assert any(
        f"forked from flow run {source.run_id} at 'llm[2]'" in m and "3 steps" in m for m in logs
    )


def test_forking_from_an_unknown_key_names_recorded_keys_and_creates_nothing() -> None:
    fake = FakeModel.returning(["a"])

    @legato.flow
    def once() -> str:
        return ai.call(fake, "hi").output

    source = run_flow(once).raise_for_state()
    client = Client(get_default_store())
    with pytest.raises(ConfigurationError, match=r"no step at 'llm\[7\]'.*llm\[0\]"):
        client.fork_run(source.run_id, "llm[7]", flow=once)
    # A run from a terminal has no work queue: it cannot be queued for a worker.
    with pytest.raises(RunStateError, match="legato fork"):
        client.fork_run(source.run_id, "llm[0]", start=False, flow=once)
    assert [r.id for r in client.list_runs()] == [source.run_id]
