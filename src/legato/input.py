"""`RunInput`: the pydantic model a paused run waits for."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RunInput(BaseModel):
    """Subclass this to describe the input a paused run needs::

        class Approval(RunInput):
            approved: bool
            reviewer: str = "unknown"

        answer = pause_flow_run(wait_for_input=Approval)

    Unknown fields are rejected, so a typo in the input is an error, not a no-op.
    """

    model_config = ConfigDict(extra="forbid")
