"""Support-ticket triage with durable model calls.

    python examples/support_triage.py                  # offline, with a scripted model
    python examples/support_triage.py --auto-approve   # ... and approve the reply at once
    legato resume RUN_ID --input '{"send": true}'      # approve a paused run yourself

Each ticket is classified with a structured output (a pydantic model, retried with
the validation error fed back when the model answers badly), routed on what the
model said, answered with a drafted reply, and held for a person's approval before
anything is sent. Every model call is a durable step: a crash or a pause never asks
the model twice for an answer it already gave, and each call records its prompt
version, tokens and cost (`legato show RUN_ID`, the run page, `legato prompts ls`).

With ``OPENAI_BASE_URL`` set (and ``OPENAI_API_KEY`` if the endpoint needs one) the
flow asks that OpenAI-compatible endpoint instead -- OpenAI, vLLM, Ollama, LM Studio
-- using the model named by ``TRIAGE_MODEL`` (default ``gpt-4o-mini``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from legato import RunInput, ai, flow, get_run_context, get_run_logger, pause_flow_run, task
from legato.ai.testing import FakeModel


class Triage(BaseModel):
    category: Literal["bug", "billing", "question"]
    urgency: Literal["low", "high"]
    summary: str = Field(max_length=200)


class SendReply(RunInput):
    """Send the drafted reply (optionally edited)?"""

    send: bool
    reply: str | None = None
    note: str = ""


CLASSIFY = ai.Prompt(
    "triage-classify",
    "Classify this support ticket. Answer with JSON: category (bug, billing or "
    "question), urgency (low or high) and a one-line summary.\n\nTicket: {ticket}",
    system="You triage support tickets for a software company.",
)
DRAFT = ai.Prompt(
    "triage-draft",
    "Write a short, friendly reply to this {category} ticket ({urgency} urgency). "
    "Summary: {summary}\n\nTicket: {ticket}",
)


def _scripted(request: ai.ModelRequest) -> str:
    """The offline model: a deterministic answer from the request's text."""
    text = request.messages[-1].content.lower()
    if request.output is not None:  # the classification step
        category = "billing" if "invoice" in text or "charged" in text else "bug"
        if "how do i" in text:
            category = "question"
        urgency = "high" if "urgent" in text or "down" in text else "low"
        summary = text.split("ticket:")[-1].strip()[:80]
        return json.dumps({"category": category, "urgency": urgency, "summary": summary})
    return "Hi! Thanks for writing in. We have reproduced the problem and a fix is on its way."


# Prices of the scripted model (USD per million tokens), so costs show up offline too.
ai.set_prices({"fake-model": {"input": 0.15, "output": 0.60}})


def model() -> Any:
    """An OpenAI-compatible endpoint when OPENAI_BASE_URL is set, else the scripted model."""
    if os.environ.get("OPENAI_BASE_URL"):
        return "openai:" + os.environ.get("TRIAGE_MODEL", "gpt-4o-mini")
    return FakeModel.returning(_scripted)


@task
def escalate(ticket_id: str, triage: Triage) -> str:
    get_run_logger().info("billing ticket %s goes to the billing team", ticket_id)
    return f"escalated {ticket_id} to billing"


@task
def send(ticket_id: str, reply: str) -> str:
    # The side effect, keyed so that a repeat would be noticed downstream.
    outbox = Path(os.environ.get("TRIAGE_OUTBOX", "outbox.jsonl"))
    key = get_run_context().idempotency_key
    with outbox.open("a", encoding="utf-8") as file:
        file.write(json.dumps({"ticket": ticket_id, "reply": reply, "key": key}) + "\n")
    return f"sent reply to {ticket_id}"


@flow(llm_budget=ai.Budget(usd=0.50, on_exceed="pause"))
def triage_ticket(ticket_id: str, ticket: str) -> str:
    llm = model()
    triage: Triage = ai.call(llm, CLASSIFY(ticket=ticket), output_type=Triage, temperature=0).output
    if triage.category == "billing":
        return escalate(ticket_id, triage)
    draft = ai.call(
        llm,
        DRAFT(
            ticket=ticket,
            category=triage.category,
            urgency=triage.urgency,
            summary=triage.summary,
        ),
        temperature=0.3,
    ).output
    decision = pause_flow_run(wait_for_input=SendReply, key="approve-reply")
    if not decision.send:
        return f"reply to {ticket_id} held: {decision.note}"
    return send(ticket_id, decision.reply or draft)


if __name__ == "__main__":
    from legato.engine.calls import resume_run
    from legato.testing import run_flow

    run = run_flow(
        triage_ticket,
        ticket_id="T-1042",
        ticket="The export button is down since this morning, urgent please!",
    )
    print(f"run {run.run_id}: {run.state.type.value}")
    if run.state.type.value == "paused" and "--auto-approve" in sys.argv:
        state = resume_run(run.run_id, {"send": True})
        print(f"run {run.run_id}: {state.type.value}: {state.result()}")
    elif run.state.type.value == "paused":
        print(f"approve it: legato resume {run.run_id} --input '{{\"send\": true}}'")
