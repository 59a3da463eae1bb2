"""`legato.ai.call` as a durable step, with the fake model (both backends)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import legato
from legato import ai
from legato._llm_records import LLMOutcome
from legato.ai.testing import FakeModel, RateLimitError
from legato.errors import (
    ConfigurationError,
    LLMBudgetExceeded,
    LLMValidationError,
)
from legato.states import StateType
from legato.store import get_default_store
from legato.testing import crash_at, resume, run_flow

pytestmark = pytest.mark.usefixtures("backend")

# USD per million tokens for the fake model: costs are exact sums of recorded tries.
PRICE = {"fake-model": {"input": 1.0, "output": 2.0}}


class Label(BaseModel):
    label: str
    urgent: bool


@pytest.fixture(autouse=True)
def prices() -> Iterator[None]:
    ai.set_prices(PRICE)
    yield
    ai.reset_prices()


def test_calls_are_recorded_with_usage_cost_and_prompt_version() -> None:
    fake = FakeModel.returning(["hello", "world"])
    greet = ai.Prompt("greet", "Say hello to {name}", system="Be brief.")

    @legato.flow
    def chat(name: str) -> list[str]:
        first = ai.call(fake, greet(name=name), temperature=0.2)
        second = ai.call(fake, [{"role": "user", "content": "again"}], key="again")
        return [first.output, second.output]

    run = run_flow(chat, name="Ada").raise_for_state()
    assert run.result == ["hello", "world"]
    assert [t.call_key for t in run.task_runs] == ["llm[0]", "again"]
    assert all(t.task_name == "llm" for t in run.task_runs)
    # Tagged with the provider: a global limit named "fake" would pace these calls.
    assert all(t.tags == ("fake",) for t in run.task_runs)
    records = get_default_store().list_llm_calls(run.run_id)
    assert [(r.call_key, r.try_number, r.outcome) for r in records] == [
        ("llm[0]", 1, LLMOutcome.OK),
        ("again", 1, LLMOutcome.OK),
    ]
    first = records[0]
    assert (first.provider, first.model) == ("fake", "fake-model")
    assert (first.prompt_name, first.prompt_version) == ("greet", greet.version)
    assert json.loads(first.params_json)["temperature"] == 0.2
    sent = json.loads(first.request_json)["messages"]
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello to Ada"},
    ]
    usage = first.usage
    assert first.cost_usd == pytest.approx(usage.input_tokens * 1e-6 + usage.output_tokens * 2e-6)
    stored = get_default_store().get_prompt("greet")
    assert stored is not None and stored.version == greet.version
    assert "Say hello to {name}" in stored.template
    # The step's result is the LLMResult, stored like any task result.
    assert len(fake.requests) == 2


def test_a_crash_mid_run_then_resume_asks_each_call_once_and_cost_is_the_sum() -> None:
    fake = FakeModel.returning([f"answer {i}" for i in range(8)])

    @legato.flow
    def eight() -> float:
        total = 0.0
        for i in range(8):
            result = ai.call(fake, f"question {i}")
            total += result.cost_usd or 0.0
        return total

    # Call 5 has its answer (and its try record) but the step's record is never
    # committed: the process "dies" there.
    with crash_at("llm[4]", when="before_commit"):
        crashed = run_flow(eight)
    assert crashed.state.type is StateType.CRASHED
    assert len(fake.requests) == 5
    done = resume(crashed).raise_for_state()
    assert len(fake.requests) == 8  # call 5's recorded answer was reused, not asked again
    records = get_default_store().list_llm_calls(done.run_id)
    assert [r.call_key for r in records] == [f"llm[{i}]" for i in range(8)]
    assert done.result == pytest.approx(sum(r.cost_usd or 0.0 for r in records))
    assert done.result > 0


def test_an_invalid_answer_is_fed_back_and_both_tries_are_billed() -> None:
    fake = FakeModel.returning([{"label": "bug"}, {"label": "bug", "urgent": True}])

    @legato.flow
    def classify() -> ai.LLMResult[Label]:
        return ai.call(fake, "Classify: the app crashes", output_type=Label)

    run = run_flow(classify).raise_for_state()
    result = run.result
    assert result.output == Label(label="bug", urgent=True)
    assert result.tries == 2
    records = get_default_store().list_llm_calls(run.run_id)
    assert [(r.step_key, r.outcome) for r in records] == [
        ("llm[0].try[1]", LLMOutcome.INVALID),
        ("llm[0].try[2]", LLMOutcome.OK),
    ]
    assert records[0].error == "urgent: Field required"
    assert result.cost_usd == pytest.approx(sum(r.cost_usd or 0.0 for r in records))
    assert result.usage == records[0].usage + records[1].usage
    second = fake.requests[1].messages
    assert second[-2].content == '{"label": "bug"}'  # the answer, then the error
    assert second[-1].role == "user" and "not valid" in second[-1].content
    assert fake.requests[1].output is not None and fake.requests[1].output.name == "Label"


def test_validation_exhausted_fails_the_call_and_a_resume_starts_a_new_round() -> None:
    fake = FakeModel.returning(["no", "still no", {"label": "ok", "urgent": False}])

    @legato.flow
    def classify() -> str:
        return ai.call(fake, "Classify", output_type=Label, max_validation_retries=1).output.label

    failed = run_flow(classify)
    assert failed.state.type is StateType.FAILED
    assert isinstance(failed.state.result(raise_on_failure=False), LLMValidationError)
    assert "max_validation_retries" in (failed.state.message or "")
    done = resume(failed).raise_for_state()
    assert done.result == "ok"
    records = get_default_store().list_llm_calls(done.run_id)
    assert [(r.try_number, r.outcome) for r in records] == [
        (1, LLMOutcome.INVALID),
        (2, LLMOutcome.INVALID),
        (3, LLMOutcome.OK),
    ]
    assert len(fake.requests[2].messages) == 1  # a fresh conversation, not the failed one


def test_transport_failures_are_retried_after_retry_after_and_not_recorded_as_tries() -> None:
    fake = FakeModel.raising(RateLimitError, times=2, retry_after=0.01).returning(["fine"])

    @legato.flow
    def ask() -> str:
        return ai.call(fake, "hi", retry_delay_seconds=0).output

    run = run_flow(ask).raise_for_state()
    assert run.result == "fine"
    assert len(fake.requests) == 3
    assert run.task_run("llm[0]").attempts == 3
    assert len(get_default_store().list_llm_calls(run.run_id)) == 1


def test_a_resume_after_the_prompt_changed_does_not_ask_again() -> None:
    fake = FakeModel.returning(["recorded answer", "second"])
    text = {"prompt": "version one"}

    @legato.flow
    def two_steps() -> list[str]:
        first = ai.call(fake, text["prompt"]).output
        legato.pause_flow_run(key="review")
        return [first, ai.call(fake, "next").output]

    paused = run_flow(two_steps)
    assert paused.state.type is StateType.PAUSED
    text["prompt"] = "version two, redeployed"
    done = resume(paused).raise_for_state()
    assert done.result == ["recorded answer", "second"]
    assert [r.messages[0].content for r in fake.requests] == ["version one", "next"]


def test_a_budget_fails_the_call_before_it_is_made() -> None:
    fake = FakeModel.returning(["a" * 400, "b" * 400, "c"])

    @legato.flow(llm_budget=ai.Budget(tokens=150))
    def spend() -> int:
        for i in range(3):
            ai.call(fake, f"q{i}")
        return 3

    run = run_flow(spend)
    assert run.state.type is StateType.FAILED
    assert isinstance(run.state.result(raise_on_failure=False), LLMBudgetExceeded)
    assert "150-token budget" in (run.state.message or "")
    assert len(fake.requests) == 2  # the third call was never made


def test_a_budget_breach_pauses_and_a_raised_budget_resumes_without_repeats() -> None:
    fake = FakeModel.returning(["a" * 400, "b" * 400, "c"])

    @legato.flow(llm_budget=ai.Budget(tokens=150, on_exceed="pause"))
    def spend() -> int:
        return sum(len(ai.call(fake, f"q{i}").output) for i in range(3))

    paused = run_flow(spend)
    assert paused.state.type is StateType.PAUSED
    assert paused.flow_run.pause is not None
    assert paused.flow_run.pause.key == "llm-budget[0]"
    assert len(fake.requests) == 2
    assert any("model budget exceeded" in m for m in paused.messages)
    done = resume(paused, tokens=10_000).raise_for_state()
    assert done.result == 801
    assert len(fake.requests) == 3


def test_the_redaction_hook_changes_only_the_record() -> None:
    fake = FakeModel.returning(["ok"])

    def hide(request: dict[str, Any]) -> dict[str, Any]:
        for message in request["messages"]:
            message["content"] = message["content"].replace("4111-1111", "[card]")
        return request

    @legato.flow
    def pay() -> str:
        return ai.call(fake, "charge 4111-1111", redact=hide).output

    run = run_flow(pay).raise_for_state()
    assert fake.requests[0].messages[0].content == "charge 4111-1111"
    recorded = get_default_store().list_llm_calls(run.run_id)[0].request_json
    assert "[card]" in recorded and "4111" not in recorded


def test_streamed_tokens_reach_the_callback_and_only_the_answer_is_recorded() -> None:
    fake = FakeModel.returning(["one two three"])
    seen: list[str] = []

    @legato.flow
    def stream() -> str:
        return ai.call(fake, "count", on_token=seen.append).output

    run = run_flow(stream).raise_for_state()
    assert seen == ["one", " two", " three"]
    assert run.result == "one two three"
    assert len(get_default_store().list_llm_calls(run.run_id)) == 1


def test_from_recording_answers_like_the_recorded_run() -> None:
    models = {"now": FakeModel.returning(["x", "y"])}

    @legato.flow
    def two() -> list[str]:
        return [ai.call(models["now"], "a").output, ai.call(models["now"], "b").output]

    first = run_flow(two).raise_for_state()
    models["now"] = FakeModel.from_recording(first.run_id, store=get_default_store())
    again = run_flow(two).raise_for_state()
    assert again.result == ["x", "y"]
    assert len(models["now"].requests) == 2


def test_bad_input_is_refused_with_a_clear_error() -> None:
    fake = FakeModel.returning(["x"])
    with pytest.raises(ConfigurationError, match="max_validation_retries"):
        ai.call(fake, "x", max_validation_retries=-1)
    with pytest.raises(ConfigurationError, match="message 0 is a int"):
        ai.call(fake, [3])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match=r"Budget needs usd= or tokens="):
        ai.Budget()
    with pytest.raises(ConfigurationError, match=r"llm_budget must be a legato\.ai\.Budget"):
        legato.flow(llm_budget=5)(lambda: None)
    with pytest.raises(ConfigurationError, match="needs name"):
        ai.Prompt("p", "Hi {name}").render()
    assert fake.requests == []
