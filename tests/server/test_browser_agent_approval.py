"""A durable pydantic-ai agent's tool call approved in a real browser (Debian's
Chromium, headless, driven by Playwright) against a real `legato server` and a
real `legato worker`: the run pauses at the tool call, shows on the Approvals
page with its ToolApproval form, is approved there, and completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _browser_support import Stack, expect_state, wait_state
from _browser_support import screenshot as save_screenshot

from legato.client import Client
from legato.states import StateType

FLOWS = """
from pathlib import Path

from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel

from legato import ai, flow


def script(messages, info):
    if not any(isinstance(m, ModelResponse) for m in messages):
        return ModelResponse(parts=[ToolCallPart("refund", {"amount": 42}, tool_call_id="r1")])
    returned = [
        p.content for m in messages for p in getattr(m, "parts", ())
        if isinstance(p, ToolReturnPart)
    ]
    return ModelResponse(parts=[TextPart(f"told the customer: {returned[0]}")])


support = Agent(FunctionModel(script, model_name="fake-model"))


@support.tool_plain(requires_approval=True)
def refund(amount: int) -> str:
    Path(__file__).with_name("refunded").write_text(str(amount))
    return f"refunded ${amount}"


durable = ai.agent(support)


@flow
def triage(ticket: str = "double charge") -> str:
    return durable.run_sync(f"Handle: {ticket}").output
"""


def test_approve_an_agents_tool_call_in_the_browser(
    stack: Stack, page: Any, tmp_path: Path
) -> None:
    flows = tmp_path / "agent_flows.py"
    flows.write_text(FLOWS)
    client = Client()
    client.deploy(f"{flows}:triage", name="triage")
    run = client.trigger("triage")
    wait_state(client, run.id, {StateType.PAUSED}, stack)
    assert not (tmp_path / "refunded").exists()

    page.goto(stack.url + "/approvals")
    card = page.locator(".card", has_text="agent[0]/approve[r1]")
    # The form says which tool call it decides, with the arguments the model proposed.
    assert "The agent wants to call refund(" in card.locator(".pause-description").inner_text()
    form = card.locator("form.generated")
    form.locator("select[name='field.decision']").select_option("approve")
    save_screenshot(page, tmp_path / "screenshots", "agent-approval")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/runs/{run.id}?**")
    expect_state(page, "completed")
    assert "told the customer: refunded $42" in page.inner_text("#live")
    assert (tmp_path / "refunded").read_text() == "42"
