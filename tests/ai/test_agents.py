"""Durable pydantic-ai agents (`legato.ai.agent`), offline with pydantic-ai's
FunctionModel, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

import legato
from legato import ai
from legato.errors import ConfigurationError, LLMBudgetExceeded
from legato.states import StateType
from legato.store import get_default_store
from legato.testing import crash_at, resume, run_flow

pytestmark = pytest.mark.usefixtures("backend")

PRICE = {"fake-model": {"input": 1.0, "output": 2.0}}


@pytest.fixture(autouse=True)
def prices() -> Iterator[None]:
    ai.set_prices(PRICE)
    yield
    ai.reset_prices()


class Script:
    """A model that asks for the given tool calls, one answer per list, then says done;
    counts the requests it got and keeps what each one saw."""

    def __init__(self, *turns: list[tuple[str, dict[str, Any], str | None]]) -> None:
        self.turns = turns
        self.seen: list[list[ModelMessage]] = []

    @property
    def requests(self) -> int:
        return len(self.seen)

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.seen.append(list(messages))
        answered = sum(isinstance(m, ModelResponse) for m in messages)
        if answered < len(self.turns):
            return ModelResponse(
                parts=[
                    ToolCallPart(name, args, tool_call_id=call_id)
                    if call_id
                    else ToolCallPart(name, args)
                    for name, args, call_id in self.turns[answered]
                ]
            )
        return ModelResponse(parts=[TextPart(f"done: {tool_returns(messages)}")])


def tool_returns(messages: list[ModelMessage]) -> dict[str, Any]:
    return {
        part.tool_name: part.content
        for m in messages
        if isinstance(m, ModelRequest)
        for part in m.parts
        if isinstance(part, ToolReturnPart)
    }


def make_agent(script: Script, log: list[str], *, approve: bool = False) -> Agent[None, str]:
    agent: Agent[None, str] = Agent(FunctionModel(script, model_name="fake-model"))

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        log.append(f"add({a},{b})")
        return a + b

    @agent.tool_plain(requires_approval=approve)
    def send(to: str) -> str:
        log.append(f"send({to})")
        return f"sent to {to}"

    return agent


def test_each_model_request_and_tool_call_is_a_recorded_step() -> None:
    script = Script([("add", {"a": 1, "b": 2}, "c1"), ("send", {"to": "ada"}, "c2")])
    log: list[str] = []
    durable = ai.agent(make_agent(script, log))

    @legato.flow
    def chat() -> str:
        return str(durable.run_sync("go").output)

    run = run_flow(chat).raise_for_state()
    assert run.result == "done: {'add': 3, 'send': 'sent to ada'}"
    assert sorted(log) == ["add(1,2)", "send(ada)"]
    steps = {t.call_key: t.task_name for t in run.task_runs}
    assert steps == {
        "agent[0]/llm[0]": "llm",
        "agent[0]/tool[c1]": "add",
        "agent[0]/tool[c2]": "send",
        "agent[0]/llm[1]": "llm",
    }
    records = get_default_store().list_llm_calls(run.run_id)
    assert [(r.call_key, r.try_number) for r in records] == [
        ("agent[0]/llm[0]", 1),
        ("agent[0]/llm[1]", 1),
    ]
    for record in records:
        assert (record.provider, record.model) == ("function", "fake-model")
        assert record.usage.input_tokens > 0 and record.usage.output_tokens > 0
        expected = record.usage.input_tokens * 1e-6 + record.usage.output_tokens * 2e-6
        assert record.cost_usd == pytest.approx(expected)
    answer = json.loads(records[0].response_json)[0]
    assert [p["tool_call_id"] for p in answer["parts"]] == ["c1", "c2"]
    assert json.loads(records[1].request_json)[-1]["parts"][0]["part_kind"] == "tool-return"


def test_a_resume_after_a_crash_replays_model_answers_and_tool_results() -> None:
    # Tool-call ids are pydantic-ai's random ones: the resume gets the same ones back
    # from the recorded answers, so the tool steps keep their keys.
    script = Script([("add", {"a": 1, "b": 2}, None)], [("send", {"to": "ada"}, None)])
    log: list[str] = []
    current = {"agent": ai.agent(make_agent(script, log))}

    @legato.flow
    def chat() -> str:
        return str(current["agent"].run_sync("go").output)

    # The third model request is answered and recorded, but its step never commits.
    with crash_at("agent[0]/llm[2]", when="before_commit"):
        crashed = run_flow(chat)
    assert crashed.state.type is StateType.CRASHED
    assert script.requests == 3
    assert log == ["add(1,2)", "send(ada)"]

    # Redeploy: a new agent whose tools do something else. No completed call runs again.
    later_log: list[str] = []
    current["agent"] = ai.agent(make_agent(script, later_log))
    done = resume(crashed).raise_for_state()
    assert done.result == "done: {'add': 3, 'send': 'sent to ada'}"
    assert script.requests == 3  # the recorded third answer was reused
    assert later_log == []
    records = get_default_store().list_llm_calls(done.run_id)
    assert [r.call_key for r in records] == [f"agent[0]/llm[{i}]" for i in range(3)]


def test_a_crash_in_a_tool_step_runs_only_that_tool_again() -> None:
    script = Script([("add", {"a": 2, "b": 2}, "c1")], [("send", {"to": "bob"}, "c2")])
    log: list[str] = []
    durable = ai.agent(make_agent(script, log))

    @legato.flow
    def chat() -> str:
        return str(durable.run_sync("go").output)

    with crash_at("agent[0]/tool[c2]", when="before_commit"):
        crashed = run_flow(chat)
    assert crashed.state.type is StateType.CRASHED
    done = resume(crashed).raise_for_state()
    assert done.result == "done: {'add': 4, 'send': 'sent to bob'}"
    assert log == ["add(2,2)", "send(bob)", "send(bob)"]
    assert script.requests == 3  # llm[0], llm[1] replayed; llm[2] asked once


@pytest.mark.parametrize(
    ("decision", "expected_log", "expected_return"),
    [
        ({"decision": "approve"}, ["send(ada)"], "sent to ada"),
        (
            {"decision": "edit", "arguments": {"to": "grace"}},
            ["send(grace)"],
            "sent to grace",
        ),
        (
            {"decision": "reject", "note": "not on a Sunday"},
            [],
            "The user rejected this call of send: not on a Sunday",
        ),
    ],
)
def test_a_tool_needing_approval_pauses_and_continues_with_the_decision(
    decision: dict[str, Any], expected_log: list[str], expected_return: str
) -> None:
    script = Script([("add", {"a": 1, "b": 1}, "c1"), ("send", {"to": "ada"}, "c2")])
    log: list[str] = []
    durable = ai.agent(make_agent(script, log, approve=True))

    @legato.flow
    def chat() -> str:
        return str(durable.run_sync("go").output)

    paused = run_flow(chat)
    assert paused.state.type is StateType.PAUSED
    run = get_default_store().get_flow_run(paused.run_id)
    assert run is not None and run.pause is not None
    assert run.pause.key == "agent[0]/approve[c2]"
    assert run.pause.input_schema is not None
    assert run.pause.input_schema["description"].startswith("The agent wants to call send(")
    assert run.pause.input_model == "legato.ai.agents:ToolApproval"
    assert log == []  # nothing of that answer ran before the decision
    assert script.requests == 1

    done = resume(paused, **decision).raise_for_state()
    assert sorted(log) == sorted(["add(1,1)", *expected_log])
    assert script.requests == 2  # the first answer was replayed
    returns = tool_returns(script.seen[-1])
    assert returns == {"add": 2, "send": expected_return}
    keys = {t.call_key for t in done.task_runs}
    assert ("agent[0]/tool[c2]" in keys) is (decision["decision"] != "reject")


def test_edited_arguments_that_do_not_fit_the_tool_fail_the_run_saying_so() -> None:
    script = Script([("send", {"to": "ada"}, "c2")])
    log: list[str] = []
    durable = ai.agent(make_agent(script, log, approve=True))

    @legato.flow
    def chat() -> str:
        return str(durable.run_sync("go").output)

    paused = run_flow(chat)
    done = resume(paused, decision="edit", arguments={"to": ["not", "a", "name"]})
    assert done.state.type is StateType.FAILED
    with pytest.raises(ConfigurationError, match="edited arguments for tool send"):
        done.raise_for_state()
    assert log == []


def test_an_async_flow_awaits_the_agent_and_runs_are_keyed_in_order() -> None:
    script = Script([("add", {"a": 3, "b": 4}, "c1")])
    log: list[str] = []
    durable = ai.agent(make_agent(script, log), name="helper")

    @legato.flow
    async def chat() -> list[str]:
        first = await durable.run("one")
        second = await durable.run("two")
        return [str(first.output), str(second.output)]

    run = run_flow(chat).raise_for_state()
    assert run.result == ["done: {'add': 7}", "done: {'add': 7}"]
    keys = [t.call_key for t in run.task_runs]
    assert "helper[0]/tool[c1]" in keys and "helper[1]/tool[c1]" in keys
    assert "helper[1]/llm[1]" in keys


def test_legato_tasks_a_tool_calls_are_nested_steps_of_the_tool_call() -> None:
    script = Script([("double", {"x": 21}, "c1")])
    agent: Agent[None, str] = Agent(FunctionModel(script, model_name="fake-model"))
    ran: list[int] = []

    @legato.task(retries=1)
    def times_two(x: int) -> int:
        ran.append(x)
        return 2 * x

    @agent.tool_plain
    def double(x: int) -> int:
        return times_two(x)

    durable = ai.agent(agent)

    @legato.flow
    def chat() -> str:
        return str(durable.run_sync("go").output)

    with crash_at("agent[0]/llm[1]", when="before_commit"):
        crashed = run_flow(chat)
    done = resume(crashed).raise_for_state()
    assert done.result == "done: {'double': 42}"
    assert ran == [21]
    tool_runs = [(t.call_key, t.task_name) for t in done.task_runs if "tool" in t.call_key]
    assert tool_runs == [
        ("agent[0]/tool[c1]", "double"),
        ("agent[0]/tool[c1]/times_two[0]", "times_two"),
    ]


def test_a_legato_task_is_a_tool_as_it_is_and_keeps_its_retries() -> None:
    script = Script([("lookup", {"order_id": "A7"}, "c1")])
    agent: Agent[None, str] = Agent(FunctionModel(script, model_name="fake-model"))
    tries: list[str] = []

    @legato.task(retries=1, retry_delay_seconds=0)
    def lookup(order_id: str) -> str:
        """Look an order up."""
        tries.append(order_id)
        if len(tries) == 1:
            raise ConnectionError("order service hiccup")
        return f"{order_id}: shipped"

    agent.tool_plain(lookup)
    durable = ai.agent(agent)

    @legato.flow
    def chat() -> str:
        return str(durable.run_sync("go").output)

    done = run_flow(chat).raise_for_state()
    assert done.result == "done: {'lookup': 'A7: shipped'}"
    assert tries == ["A7", "A7"]  # the task's own retry
    nested = done.task_run("agent[0]/tool[c1]/lookup[0]")
    assert nested.attempts == 2 and nested.state is StateType.COMPLETED


def test_a_streamed_run_gets_each_answer_whole_from_a_durable_step() -> None:
    script = Script([("add", {"a": 5, "b": 5}, "c1")])
    log: list[str] = []
    durable = ai.agent(make_agent(script, log))
    events: list[str] = []

    async def handler(ctx: Any, stream: Any) -> None:
        async for event in stream:
            events.append(type(event).__name__)

    @legato.flow
    async def chat() -> str:
        result = await durable.run("go", event_stream_handler=handler)
        return str(result.output)

    run = run_flow(chat).raise_for_state()
    assert run.result == "done: {'add': 10}"
    assert "PartStartEvent" in events
    assert [r.call_key for r in get_default_store().list_llm_calls(run.run_id)] == [
        "agent[0]/llm[0]",
        "agent[0]/llm[1]",
    ]


def test_the_flow_budget_is_checked_before_each_model_request() -> None:
    script = Script([("add", {"a": 1, "b": 2}, "c1")])
    log: list[str] = []
    durable = ai.agent(make_agent(script, log))

    @legato.flow(llm_budget=ai.Budget(tokens=10))
    def chat() -> str:
        return str(durable.run_sync("go").output)

    run = run_flow(chat)
    assert run.state.type is StateType.FAILED
    with pytest.raises(LLMBudgetExceeded):
        run.raise_for_state()
    assert script.requests == 1  # the second request was never sent
    assert log == ["add(1,2)"]


def test_a_budget_pause_before_a_model_request_resumes_with_a_raised_budget() -> None:
    script = Script([("add", {"a": 1, "b": 2}, "c1")])
    log: list[str] = []
    durable = ai.agent(make_agent(script, log))

    @legato.flow(llm_budget=ai.Budget(tokens=10, on_exceed="pause"))
    def chat() -> str:
        return str(durable.run_sync("go").output)

    paused = run_flow(chat)
    assert paused.state.type is StateType.PAUSED
    run = get_default_store().get_flow_run(paused.run_id)
    assert run is not None and run.pause is not None and run.pause.key == "llm-budget[0]"
    done = resume(paused, tokens=100_000).raise_for_state()
    assert done.result == "done: {'add': 3}"
    assert script.requests == 2 and log == ["add(1,2)"]


def test_model_steps_carry_the_provider_name_and_given_tags_for_global_limits() -> None:
    script = Script([("add", {"a": 1, "b": 2}, "c1")])
    log: list[str] = []
    durable = ai.agent(make_agent(script, log), tags=["tier2"])

    @legato.flow
    def chat() -> str:
        return str(durable.run_sync("go").output)

    run = run_flow(chat).raise_for_state()
    tags = {t.call_key: t.tags for t in run.task_runs}
    assert tags["agent[0]/llm[0]"] == ("function", "tier2")
    assert tags["agent[0]/tool[c1]"] == ()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs a pydantic_ai"):
        ai.agent(object())
    with pytest.raises(ConfigurationError, match="part of step keys"):
        ai.agent(make_agent(Script(), []), name="a/b")
    with pytest.raises(ConfigurationError, match="list of names"):
        ai.agent(make_agent(Script(), []), tags="openai")


def test_run_sync_in_an_async_flow_says_to_await_run() -> None:
    durable = ai.agent(make_agent(Script(), []))

    @legato.flow
    async def chat() -> str:
        return str(durable.run_sync("go").output)

    run = run_flow(chat)
    with pytest.raises(ConfigurationError, match="use `await agent"):
        run.raise_for_state()


def test_outside_a_flow_the_agent_runs_as_it_is() -> None:
    script = Script([("add", {"a": 1, "b": 2}, "c1")])
    log: list[str] = []
    durable = ai.agent(make_agent(script, log))
    result = durable.run_sync("go")
    assert result.output == "done: {'add': 3}"
    assert log == ["add(1,2)"]
