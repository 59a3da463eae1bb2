"""Runs with recorded model calls, made offline with the fake model, for the tests of
how calls, tokens, costs and prompts are shown (CLI, metrics, web UI, screenshot).

`triage_run()` runs a small support-ticket triage flow: a structured classification
whose first answer fails validation (two tries), a reply drafted from a versioned
prompt inside a task (key ``draft[0]/llm[0]``), and a summary whose answer holds
markup. Usage is fixed per answer, so tokens and costs are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

import legato
from legato import ai
from legato.ai.testing import FakeModel
from legato.testing import run_flow

# USD per million tokens: 100 input + 20 output tokens cost 0.0001 + 0.00004.
PRICES = {"fake-model": {"input": 1.0, "output": 2.0}}
USAGE = ai.LLMUsage(input_tokens=100, output_tokens=20)
TRY_COST = 100 * 1e-6 + 20 * 2e-6
MARKUP = "<script>alert('x')</script> Thanks & regards"

CLASSIFY = ai.Prompt(
    "classify-ticket",
    "Classify this support ticket as billing, bug or other: {ticket}",
    system="You triage support tickets.",
)
REPLY = ai.Prompt("draft-reply", "Write a short, kind reply to this {label} ticket: {ticket}")


class Label(BaseModel):
    label: str
    urgent: bool


@dataclass(frozen=True)
class TriageRun:
    run_id: str
    tries: int  # answered tries recorded (validation retries included)
    cost_usd: float


def triage_flow(model: FakeModel) -> legato.Flow[[str], str]:
    @legato.task
    def draft(label: str, ticket: str) -> str:
        return str(ai.call(model, REPLY(label=label, ticket=ticket)).output)

    @legato.flow(name="triage")
    def triage(ticket: str) -> str:
        label = ai.call(model, CLASSIFY(ticket=ticket), output_type=Label).output
        reply = draft(label.label, ticket)
        ai.call(model, f"Summarize for the log: {reply}", key="summary")
        return reply

    return triage


def triage_model(reply: str = "We refunded the double charge.") -> FakeModel:
    return FakeModel(usage=USAGE).returning(
        [
            "billing, urgent",  # not JSON: fails validation, fed back
            Label(label="billing", urgent=True),
            reply,
            MARKUP,
        ]
    )


def triage_run(ticket: str = "I was charged twice", reply: str | None = None) -> TriageRun:
    """Run the triage flow once (prices must be set); 4 tries, 3 calls."""
    model = triage_model() if reply is None else triage_model(reply)
    run = run_flow(triage_flow(model), ticket=ticket).raise_for_state()
    return TriageRun(run_id=run.run_id, tries=4, cost_usd=4 * TRY_COST)
