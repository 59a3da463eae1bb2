"""The pydantic-ai side of durable agents (`legato.ai.agents`): a capability that
wraps the run's model and toolset so that each model request and each tool call
is a legato task run. Imported only when an agent runs inside a flow, so
``import legato`` never loads pydantic-ai.

The agent's coroutine runs on an event loop; each step runs as a legato task in a
worker thread (``asyncio.to_thread``, which carries the flow run's context), and
the task body sends the model request or calls the tool back on that loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelResponse, ToolCallPart
from pydantic_ai.models import Model
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.toolsets import AbstractToolset, WrapperToolset

from legato._llm_records import LLMCallRecord, LLMOutcome, LLMUsage
from legato.ai.budget import enforce, spend_of
from legato.ai.pricing import cost_of
from legato.engine.llm import current_step, record_try, recorded_tries
from legato.errors import ConfigurationError, ModelRateLimitError, ModelUnavailableError
from legato.tasks import Task

if TYPE_CHECKING:
    from legato.ai.agents import AgentScope

T = TypeVar("T")


def _on_loop(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the agent's loop from a step's thread and wait for it."""
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result()


class AgentModelRequest:
    """The argument of an agent's model step. A plain class on purpose: replay
    fingerprints it by its type only, so a changed prompt or model replays its answer."""

    __slots__ = ("loop", "messages", "model", "parameters", "settings")

    def __init__(
        self,
        model: Model,
        messages: list[Any],
        settings: Any,
        parameters: Any,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.model = model
        self.messages = messages
        self.settings = settings
        self.parameters = parameters
        self.loop = loop

    def __repr__(self) -> str:
        return f"AgentModelRequest({self.model.system}:{self.model.model_name})"


class AgentToolCall:
    """The argument of an agent's tool step (fingerprinted by its type only, so a
    tool whose code changed still replays its recorded result)."""

    __slots__ = ("args", "ctx", "loop", "name", "tool", "toolset")

    def __init__(
        self,
        toolset: AbstractToolset[Any],
        name: str,
        args: dict[str, Any],
        ctx: Any,
        tool: Any,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.toolset = toolset
        self.name = name
        self.args = args
        self.ctx = ctx
        self.tool = tool
        self.loop = loop

    def __repr__(self) -> str:
        return f"AgentToolCall({self.name})"


def usage_of(response: ModelResponse) -> LLMUsage:
    usage = response.usage
    return LLMUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cache_read_tokens,
        reasoning_tokens=usage.output_reasoning_tokens
        or int(usage.details.get("reasoning_tokens", 0)),
    )


def _model_step(call: AgentModelRequest) -> ModelResponse:
    """The body of an agent's ``llm`` step: reuse an answer recorded before a crash,
    or send the request and record the answered try."""
    step = current_step("an agent's model request")
    tries = recorded_tries(step)
    for earlier in tries:
        if earlier.outcome is LLMOutcome.OK:
            return ModelMessagesTypeAdapter.validate_json(earlier.response_json)[0]  # type: ignore[return-value]
    model = call.model
    provider, name = str(model.system), str(model.model_name)
    started = _now()
    clock = time.perf_counter()
    from pydantic_ai import exceptions

    try:
        response = _on_loop(call.loop, model.request(call.messages, call.settings, call.parameters))
    except exceptions.ModelAPIError as error:
        from legato.ai.providers.pydantic_ai import _mapped

        raise _mapped(provider, name, error) from error
    latency = time.perf_counter() - clock
    usage = usage_of(response)
    record = LLMCallRecord(
        id=uuid.uuid4().hex,
        flow_run_id=step.flow_ctx.run.id,
        call_key=step.call_key,
        try_number=(tries[-1].try_number if tries else 0) + 1,
        provider=provider,
        model=response.model_name or name,
        outcome=LLMOutcome.OK,
        started=started,
        latency_seconds=latency,
        usage=usage,
        cost_usd=cost_of(name, usage),
        finish_reason=response.finish_reason,
        params_json=json.dumps(
            {"provider": provider, "model": name, **dict(call.settings or {})},
            default=str,
            sort_keys=True,
        ),
        request_json=ModelMessagesTypeAdapter.dump_json(call.messages).decode(),
        response_json=ModelMessagesTypeAdapter.dump_json([response]).decode(),
    )
    record_try(step, record)
    return response


def _tool_step(call: AgentToolCall) -> Any:
    return _on_loop(call.loop, call.toolset.call_tool(call.name, call.args, call.ctx, call.tool))


def _now() -> Any:
    from legato._clock import now

    return now()


MODEL_TASK: Task[[AgentModelRequest], ModelResponse] = Task(
    _model_step,
    name="llm",
    retries=3,
    retry_delay_seconds=[1.0, 5.0, 15.0],
    retry_jitter_factor=0.2,
    retry_on=(ModelRateLimitError, ModelUnavailableError),
)


class DurableModel(WrapperModel):
    """Sends each model request of the agent run as a legato ``llm`` step."""

    def __init__(self, wrapped: Model, scope: AgentScope) -> None:
        super().__init__(wrapped)
        self.scope = scope

    async def request(
        self, messages: Any, model_settings: Any, model_request_parameters: Any
    ) -> Any:
        scope = self.scope
        key = scope.next_model_key()
        enforce(scope.flow_ctx, in_task=False)
        task = MODEL_TASK.with_options(call_key=key, tags=[str(self.wrapped.system), *scope.tags])
        loop = asyncio.get_running_loop()
        step = AgentModelRequest(
            self.wrapped, list(messages), model_settings, model_request_parameters, loop
        )
        response: ModelResponse = await asyncio.to_thread(scope.run_step, task, step)
        usage = usage_of(response)
        spend_of(scope.flow_ctx).add(usage, cost_of(str(self.wrapped.model_name), usage))
        # Decisions on the tool calls that need approval are asked for here, before any
        # tool of this answer runs: the run pauses while nothing else is in flight.
        for part in response.parts:
            if isinstance(part, ToolCallPart) and part.tool_name in scope.needs_approval:
                scope.decide(part.tool_name, part.tool_call_id, part.args_as_dict())
        return response

    @asynccontextmanager
    async def request_stream(
        self,
        messages: Any,
        model_settings: Any,
        model_request_parameters: Any,
        run_context: Any = None,
    ) -> AsyncIterator[Any]:
        # A streamed request runs as one non-streamed durable step: the caller gets
        # the whole answer at once (see docs/architecture.md).
        from pydantic_ai.models import CompletedStreamedResponse

        response = await self.request(messages, model_settings, model_request_parameters)
        yield CompletedStreamedResponse(
            response, model_request_parameters=model_request_parameters, replay_events=True
        )


@dataclasses.dataclass
class DurableToolset(WrapperToolset[Any]):
    """Runs each tool call as a legato task keyed by the model's tool-call id, and
    pauses for a human decision before a tool marked ``requires_approval=True``."""

    scope: Any = None

    async def get_tools(self, ctx: Any) -> dict[str, Any]:
        tools = await self.wrapped.get_tools(ctx)
        result: dict[str, Any] = {}
        for name, tool in tools.items():
            if tool.tool_def.kind == "unapproved":
                # The approval is asked here (a durable pause), not by pydantic-ai's deferral.
                self.scope.needs_approval.add(name)
                tool = dataclasses.replace(
                    tool, tool_def=dataclasses.replace(tool.tool_def, kind="function")
                )
            result[name] = tool
        return result

    async def call_tool(self, name: str, tool_args: dict[str, Any], ctx: Any, tool: Any) -> Any:
        scope = self.scope
        call_id = ctx.tool_call_id or f"{name}#{scope.next_anonymous(name)}"
        if name in scope.needs_approval:
            decision = scope.decide(name, call_id, tool_args)
            if decision.decision == "reject":
                note = f": {decision.note}" if decision.note else ""
                return f"The user rejected this call of {name}{note}"
            if decision.decision == "edit" and decision.arguments is not None:
                tool_args = _edited(name, tool, decision.arguments)
        key = f"{scope.prefix}tool[{call_id}]"
        loop = asyncio.get_running_loop()
        task = Task(_tool_step, name=name)
        step = AgentToolCall(self.wrapped, name, tool_args, ctx, tool, loop)
        return await asyncio.to_thread(scope.run_step, task.with_options(call_key=key), step)


def _edited(name: str, tool: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    from pydantic import ValidationError

    try:
        validated: dict[str, Any] = tool.args_validator.validate_python(arguments)
    except ValidationError as error:
        raise ConfigurationError(
            f"the edited arguments for tool {name} do not fit its parameters: {error}; "
            "resume the run with arguments the tool accepts"
        ) from error
    return validated


@dataclasses.dataclass(init=False)
class LegatoDurability(AbstractCapability[Any]):
    """The capability a durable agent run adds: durable model requests and tool calls."""

    def __init__(self, scope: AgentScope) -> None:
        self.scope = scope

    def get_wrapper_model(self, model: Model) -> Model | None:
        return DurableModel(model, self.scope)

    def get_wrapper_toolset(self, toolset: AbstractToolset[Any]) -> AbstractToolset[Any] | None:
        return DurableToolset(toolset, scope=self.scope)
