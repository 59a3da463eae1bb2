"""Durable pydantic-ai agents: ``legato.ai.agent(Agent(...))``.

Inside a flow run, the n-th durable agent run in its scope gets the key
``agent[n]`` (or ``NAME[n]`` with ``name=``), its model requests are ``llm``
task runs keyed ``agent[n]/llm[k]`` and its tool calls task runs keyed
``agent[n]/tool[<tool call id>]``; a tool marked ``requires_approval=True``
pauses the run at ``agent[n]/approve[<tool call id>]`` for a `ToolApproval`.
A resumed run replays the recorded model answers (so the same tool-call ids
come back) and tool results, and continues from the first unfinished step.
Outside a flow the agent runs as it is, with nothing recorded.

This module does not import pydantic-ai; `legato.ai.agent_steps` does, when an
agent first runs inside a flow.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from legato.engine.context import BRANCH, FLOW_CONTEXT, FlowRunContext, current_scope
from legato.errors import ConfigurationError, MissingExtraError
from legato.input import RunInput

if TYPE_CHECKING:
    from collections.abc import Iterable


class ToolApproval(RunInput):
    """A decision on a tool call the agent proposed: ``approve`` runs it, ``edit`` runs
    it with ``arguments`` instead, ``reject`` gives the model ``note`` as the answer."""

    decision: Literal["approve", "edit", "reject"] = Field(
        description="approve, edit (run with the arguments given here) or reject"
    )
    arguments: dict[str, Any] | None = Field(
        default=None, description="the arguments to run the tool with (for edit)"
    )
    note: str = Field(default="", description="told to the model when the call is rejected")


class AgentScope:
    """What one durable agent run hands out: its step keys and its approvals."""

    def __init__(self, flow_ctx: FlowRunContext, prefix: str, tags: tuple[str, ...]) -> None:
        self.flow_ctx = flow_ctx
        self.prefix = prefix
        self.tags = tags  # added to the model steps' tags (besides the provider's name)
        self._lock = threading.Lock()
        self._model_requests = 0
        self._anonymous: dict[str, int] = {}
        self.needs_approval: set[str] = set()  # tools marked requires_approval=True
        self._decisions: dict[str, ToolApproval] = {}
        # The asyncio branch the agent runs in (if any): its steps are keyed in that
        # branch, not in the tasks pydantic-ai creates (whose names are not stable).
        self.branch = BRANCH.get()

    def run_step(self, task: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a step's task (in a worker thread with a copy of the agent's context)."""
        BRANCH.set(self.branch)
        return task(*args, **kwargs)

    def next_model_key(self) -> str:
        # Model requests of one agent run happen one after another, so their order
        # is the same on every replay.
        with self._lock:
            n = self._model_requests
            self._model_requests += 1
        return f"{self.prefix}llm[{n}]"

    def next_anonymous(self, name: str) -> int:
        with self._lock:
            n = self._anonymous.get(name, 0)
            self._anonymous[name] = n + 1
        return n

    def decide(self, tool: str, call_id: str, arguments: dict[str, Any]) -> ToolApproval:
        """Pause the run for a decision on this tool call (or return the one given)."""
        with self._lock:
            known = self._decisions.get(call_id)
        if known is not None:
            return known
        from legato.engine.pause import pause_flow_run

        key = f"{self.prefix}approve[{call_id}]"
        found, _ = self.flow_ctx.store.get_run_input(self.flow_ctx.run.id, key)
        if not found:
            from legato.engine.logs import get_run_logger

            get_run_logger().warning(
                "agent wants to call %s(%s): paused at %s for approval; answer with "
                'legato resume %s --input \'{"decision": "approve"}\' (or "edit" with '
                '"arguments", or "reject" with a "note")',
                tool,
                json.dumps(arguments, default=str),
                key,
                self.flow_ctx.run.id,
            )
        decision = pause_flow_run(
            wait_for_input=ToolApproval,
            key=key,
            description=f"The agent wants to call {tool}"
            f"({json.dumps(arguments, default=str)}): approve, edit the arguments, or reject.",
        )
        with self._lock:
            self._decisions[call_id] = decision
        return decision


class DurableAgent:
    """A pydantic-ai agent whose model requests and tool calls are durable steps of
    the flow run it runs in (see the module's docstring). Made by `legato.ai.agent`."""

    def __init__(
        self, agent: Any, *, name: str | None = None, tags: Sequence[str] | None = None
    ) -> None:
        if name is not None and (not name or not name.replace("_", "").replace("-", "").isalnum()):
            raise ConfigurationError(
                f"legato.ai.agent(name={name!r}): the name is part of step keys; use letters, "
                "digits, '_' and '-'"
            )
        if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags or ()):
            raise ConfigurationError(
                f"legato.ai.agent(tags={tags!r}) must be a list of names, e.g. ['openai-tier2']"
            )
        self.agent = agent
        self.name = name or "agent"
        self.tags = tuple(tags or ())

    def __repr__(self) -> str:
        return f"DurableAgent({self.name})"

    async def run(
        self,
        user_prompt: Any = None,
        *,
        message_history: Sequence[Any] | None = None,
        deps: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Run the agent (``await`` it); returns pydantic-ai's ``AgentRunResult``."""
        flow_ctx = FLOW_CONTEXT.get()
        if flow_ctx is None:
            return await self.agent.run(
                user_prompt, message_history=message_history, deps=deps, **kwargs
            )
        capability = self._durability(flow_ctx)
        extra: Iterable[Any] = kwargs.pop("capabilities", None) or ()
        try:
            return await self.agent.run(
                user_prompt,
                message_history=message_history,
                deps=deps,
                capabilities=[capability, *extra],
                **kwargs,
            )
        except BaseExceptionGroup as group:
            raise _signal_in(group) from None

    def run_sync(
        self,
        user_prompt: Any = None,
        *,
        message_history: Sequence[Any] | None = None,
        deps: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Run the agent to its end from synchronous code (a sync flow); returns
        pydantic-ai's ``AgentRunResult``."""
        if _running_loop():
            if FLOW_CONTEXT.get() is None:
                return self.agent.run_sync(
                    user_prompt, message_history=message_history, deps=deps, **kwargs
                )
            raise ConfigurationError(
                "DurableAgent.run_sync() was called where an event loop is running (an async "
                "flow); use `await agent.run(...)` there"
            )
        # A loop of its own, closed at the end (outside a flow too: pydantic-ai's
        # run_sync would leave one open).
        return asyncio.run(
            self.run(user_prompt, message_history=message_history, deps=deps, **kwargs)
        )

    def _durability(self, flow_ctx: FlowRunContext) -> Any:
        try:
            from legato.ai.agent_steps import LegatoDurability
        except ImportError as error:
            raise MissingExtraError("ai", "pydantic_ai", "legato.ai.agent") from error
        key = current_scope(flow_ctx).next_key(self.name)
        return LegatoDurability(AgentScope(flow_ctx, f"{key}/", self.tags))


def _running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _signal_in(group: BaseExceptionGroup[Any]) -> BaseException:
    """The legato signal (pause, cancel) or the single error a task group wrapped."""
    from legato.errors import _Signal

    signals = group.subgroup(lambda e: isinstance(e, _Signal))
    if signals is not None:
        first: BaseException = signals
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        return first
    if len(group.exceptions) == 1:
        return group.exceptions[0]
    return group


def agent(
    pydantic_ai_agent: Any, *, name: str | None = None, tags: Sequence[str] | None = None
) -> DurableAgent:
    """Make a pydantic-ai ``Agent`` durable inside flows: each model request and tool
    call becomes a recorded step, and tools marked ``requires_approval=True`` pause
    the run for a `ToolApproval`. ``name``: the key of its runs (default ``agent``).
    ``tags``: added to its model steps' tags, which always hold the provider's name,
    so a global limit of that name (``legato limit set openai 60 --per 60``) paces
    them as it paces ``legato.ai.call``."""
    if not hasattr(pydantic_ai_agent, "run") or not hasattr(pydantic_ai_agent, "run_sync"):
        raise ConfigurationError(
            f"legato.ai.agent needs a pydantic_ai.Agent, got {pydantic_ai_agent!r}"
        )
    return DurableAgent(pydantic_ai_agent, name=name, tags=tags)
