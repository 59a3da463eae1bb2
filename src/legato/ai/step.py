"""`legato.ai.call`: a model call as a durable step.

The call is a task run named ``llm`` (key ``llm[n]`` in its scope, or ``key=``):
its result is the accepted answer (`LLMResult`), so a resume answers it from the
record without asking the provider, whatever the code around it became (the call's
argument is fingerprinted by its type only). Inside the step each answered try is
written as it arrives (`engine.llm.record_try`); a try whose answer fails
validation is fed back to the model and tried again (``llm[3].try[2]``), up to
``max_validation_retries`` more times. Tries an earlier execution recorded are
reused, never asked again. Transport failures (429, 5xx, timeouts) are the task's
failures and follow its retry options, waiting at least what ``Retry-After`` asked.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, overload

from legato._llm_records import LLMCallRecord, LLMOutcome, LLMUsage
from legato.ai.budget import enforce, spend_of
from legato.ai.convert import (
    message_json,
    output_spec,
    response_from_json,
    response_to_json,
    to_messages,
    tool_spec,
)
from legato.ai.pricing import cost_of
from legato.ai.prompts import Prompt, RenderedPrompt
from legato.ai.results import LLMResult
from legato.ai.types import Message, ModelClient, ModelRequest, ModelResponse, ToolSpec
from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT, TaskRunContext
from legato.engine.llm import current_step, record_try, recorded_tries, save_prompt
from legato.errors import (
    ConfigurationError,
    LLMValidationError,
    ModelRateLimitError,
    ModelUnavailableError,
)
from legato.tasks import Task

if TYPE_CHECKING:
    from legato.ai.stream import LLMStream
    from legato.engine.context import FlowRunContext

Redactor = Callable[[dict[str, Any]], dict[str, Any]]
TokenCallback = Callable[[str], None]

_redactor: Redactor | None = None
_unpriced: set[str] = set()
_unpriced_lock = threading.Lock()
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)

DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAYS = [1.0, 5.0, 15.0]


def set_redactor(redact: Redactor | None) -> None:
    """Set the hook every recorded request passes through (None: record as sent).

    It gets the request as a dict (``messages``, ``tools``, ``output``) and returns
    what to store; the provider always gets the real request.
    """
    global _redactor
    if redact is not None and not callable(redact):
        raise ConfigurationError(f"set_redactor needs a function or None, got {redact!r}")
    _redactor = redact


class ModelCall:
    """The argument of a model call's step. A plain class on purpose: replay
    fingerprints it by its type only, so a changed prompt still replays its answer."""

    __slots__ = (
        "adapter",
        "client",
        "max_tries",
        "on_token",
        "output_type",
        "params_json",
        "prompt",
        "redact",
        "request",
    )

    def __init__(
        self,
        client: ModelClient,
        request: ModelRequest,
        *,
        output_type: Any,
        max_tries: int,
        prompt: Prompt | None,
        redact: Redactor | None,
        on_token: TokenCallback | None,
    ) -> None:
        self.client = client
        self.request = request
        self.output_type = output_type
        self.adapter: Any = None
        if output_type is not None and output_type is not str:
            from pydantic import TypeAdapter

            self.adapter = TypeAdapter(output_type)
        self.max_tries = max_tries
        self.prompt = prompt
        self.redact = redact
        self.on_token = on_token
        config = {
            "provider": client.provider,
            "model": client.model,
            **dict(request.params),
        }
        if request.output is not None:
            config["output_type"] = request.output.name
        self.params_json = json.dumps(config, default=str, sort_keys=True)

    def __repr__(self) -> str:  # what a failed call's recorded inputs show
        return f"ModelCall({self.client.provider}:{self.client.model})"


def _step(call: ModelCall) -> LLMResult[Any]:
    step = current_step("a model call")
    if call.prompt is not None:
        save_prompt(step.flow_ctx, call.prompt.name, call.prompt.version, call.prompt.stored_text)
    tries = recorded_tries(step)
    current, answered = _open_round(tries, call.max_tries)
    messages = list(call.request.messages)
    if answered is not None:  # answered before a crash kept the step's own record
        return _accept(call, step, tries, response_from_json(answered.response_json))
    for earlier in current:
        messages += _feedback(call, response_from_json(earlier.response_json), earlier.error)
    number = tries[-1].try_number if tries else 0
    while len(current) < call.max_tries:
        number += 1
        request = replace(call.request, messages=tuple(messages))
        started = _now()
        clock = time.perf_counter()
        response = _ask(call, request)
        latency = time.perf_counter() - clock
        ok, _, error = _validate(call, response)
        record = LLMCallRecord(
            id=uuid.uuid4().hex,
            flow_run_id=step.flow_ctx.run.id,
            call_key=step.call_key,
            try_number=number,
            provider=call.client.provider,
            model=response.model or call.client.model,
            outcome=LLMOutcome.OK if ok else LLMOutcome.INVALID,
            started=started,
            latency_seconds=latency,
            usage=response.usage,
            cost_usd=_cost(step, call.client.model, response),
            finish_reason=response.finish_reason,
            params_json=call.params_json,
            request_json=_request_json(call, request),
            response_json=response_to_json(response),
            error=error,
            prompt_name=call.prompt.name if call.prompt else None,
            prompt_version=call.prompt.version if call.prompt else None,
        )
        record_try(step, record)
        tries.append(record)
        current.append(record)
        if ok:
            return _accept(call, step, tries, response)
        messages += _feedback(call, response, error)
    last = current[-1].error if current else "no answer"
    raise LLMValidationError(
        f"model call {step.call_key} ({call.client.provider}:{call.client.model}): "
        f"{len(current)} answers failed validation as {call.request.output.name if call.request.output else 'output'}; "  # noqa: E501
        f"last error: {last}. Raise max_validation_retries=, loosen the output type, or "
        "improve the prompt (each try is recorded: legato show RUN)"
    )


def _open_round(
    tries: Sequence[LLMCallRecord], max_tries: int
) -> tuple[list[LLMCallRecord], LLMCallRecord | None]:
    """(tries of the round still open, an accepted try no task record holds yet).

    A round ends with an accepted answer or after ``max_tries`` tries. A round that
    ended in failure is not continued: the call was failed, and running it again
    starts a new round (a fresh conversation).
    """
    current: list[LLMCallRecord] = []
    answered: LLMCallRecord | None = None
    for record in tries:
        current.append(record)
        answered = None
        if record.outcome is LLMOutcome.OK:
            answered = record
            current = []
        elif len(current) >= max_tries:
            current = []
    return current, answered


def _ask(call: ModelCall, request: ModelRequest) -> ModelResponse:
    if call.on_token is None:
        return call.client.request(request)
    final: ModelResponse | None = None
    for piece in call.client.stream(request):
        if isinstance(piece, ModelResponse):
            final = piece
        elif piece.text:
            call.on_token(piece.text)
    if final is None:
        raise ModelUnavailableError(
            f"{call.client.provider}:{call.client.model}: the stream ended without a final "
            "answer; the call is retried under its task's retry options"
        )
    return final


def _validate(call: ModelCall, response: ModelResponse) -> tuple[bool, Any, str | None]:
    """(accepted, output, validation error)."""
    if call.adapter is None or response.tool_calls:
        return True, response.text, None
    text = response.text
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    from pydantic import ValidationError

    try:
        return True, call.adapter.validate_json(text), None
    except ValidationError as exc:
        return False, None, _short_errors(exc)


def _short_errors(exc: Any) -> str:
    parts = []
    for err in exc.errors()[:8]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "(answer)"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


def _feedback(call: ModelCall, response: ModelResponse, error: str | None) -> list[Message]:
    name = call.request.output.name if call.request.output else "the output"
    return [
        Message("assistant", response.text, response.tool_calls),
        Message(
            "user",
            f"That answer is not valid: {error}. Answer again with only a JSON value that "
            f"matches the schema of {name}.",
        ),
    ]


def _accept(
    call: ModelCall, step: TaskRunContext, tries: Sequence[LLMCallRecord], response: ModelResponse
) -> LLMResult[Any]:
    ok, output, error = _validate(call, response)
    if not ok:
        raise LLMValidationError(
            f"model call {step.call_key}: its recorded answer no longer validates ({error}); "
            "the output type changed since it was recorded -- fork the run from this call "
            f"(legato fork {step.flow_ctx.run.id} --from {step.call_key}) to ask again"
        )
    usage = LLMUsage()
    cost: float | None = None
    latency = 0.0
    for record in tries:
        usage = usage + record.usage
        latency += record.latency_seconds
        if record.cost_usd is not None:
            cost = (cost or 0.0) + record.cost_usd
    return LLMResult(
        output=output,
        text=response.text,
        provider=call.client.provider,
        model=response.model or call.client.model,
        call_key=step.call_key,
        tries=len(tries),
        usage=usage,
        cost_usd=cost,
        latency_seconds=latency,
        finish_reason=response.finish_reason,
        tool_calls=response.tool_calls,
        prompt_name=call.prompt.name if call.prompt else None,
        prompt_version=call.prompt.version if call.prompt else None,
    )


def _cost(step: TaskRunContext, model: str, response: ModelResponse) -> float | None:
    cost = cost_of(model, response.usage)
    if cost is None and response.model and response.model != model:
        cost = cost_of(response.model, response.usage)
    if cost is None:
        with _unpriced_lock:
            first = model not in _unpriced
            _unpriced.add(model)
        if first:
            from legato.engine.logs import get_run_logger

            get_run_logger().warning(
                "no price known for model %r: its calls are recorded without a cost; set one "
                "with legato.ai.set_prices({%r: {'input': ..., 'output': ...}}) (USD per "
                "million tokens) or LEGATO_AI_PRICES",
                model,
                model,
            )
    return cost


def _request_json(call: ModelCall, request: ModelRequest) -> str:
    data: dict[str, Any] = {
        "messages": [message_json(m) for m in request.messages],
        "tools": [
            {"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
            for t in request.tools
        ],
        "output": None
        if request.output is None
        else {"name": request.output.name, "schema": dict(request.output.schema)},
    }
    redact = call.redact or _redactor
    if redact is not None:
        data = redact(data)
    return json.dumps(data, default=str)


def _now() -> Any:
    from legato._clock import now

    return now()


def _resolve(model: Any) -> ModelClient:
    # A client is used as is (checked by its methods: a Protocol isinstance costs ~30 us).
    if (
        not isinstance(model, str)
        and callable(getattr(model, "request", None))
        and callable(getattr(model, "stream", None))
        and hasattr(model, "provider")
    ):
        return model
    from legato.ai.providers import resolve_model

    return resolve_model(model)


def _messages_of(
    messages: Any,
) -> tuple[Prompt | None, tuple[Message, ...]]:
    if isinstance(messages, Prompt):
        messages = messages.render()
    if isinstance(messages, RenderedPrompt):
        return messages.prompt, messages.messages()
    return None, to_messages(messages)


def _base_task() -> Task[[ModelCall], LLMResult[Any]]:
    return Task(
        _step,
        name="llm",
        retries=DEFAULT_RETRIES,
        retry_delay_seconds=DEFAULT_RETRY_DELAYS,
        retry_jitter_factor=0.2,
        retry_on=(ModelRateLimitError, ModelUnavailableError),
    )


_LLM_TASK = _base_task()


Messages = str | Prompt | RenderedPrompt | Sequence[Message | Mapping[str, Any]]


@overload
def call(
    model: Any, messages: Messages, *, stream: Literal[False] = False, **options: Any
) -> LLMResult[Any]: ...


@overload
def call(model: Any, messages: Messages, *, stream: Literal[True], **options: Any) -> LLMStream: ...


def call(
    model: Any,
    messages: Messages,
    *,
    output_type: Any = None,
    tools: Sequence[Callable[..., Any] | ToolSpec] | None = None,
    key: str | None = None,
    max_validation_retries: int = 2,
    retries: int = DEFAULT_RETRIES,
    retry_delay_seconds: float | Sequence[float] | None = None,
    timeout_seconds: float | None = None,
    redact: Redactor | None = None,
    on_token: TokenCallback | None = None,
    stream: bool = False,
    tags: Sequence[str] | None = None,
    **params: Any,
) -> LLMResult[Any] | LLMStream:
    """Ask a model, as a durable step of the current flow run; returns an `LLMResult`.

    ``model``: "openai:gpt-4o-mini", "anthropic:claude-...", any pydantic-ai model
    name or instance, or a `ModelClient` (e.g. `legato.ai.testing.FakeModel`).
    ``messages``: a string (one user message), a `Prompt` / rendered prompt, or chat
    messages. ``output_type``: validate the answer as this type (a pydantic model),
    retrying with the error fed back up to ``max_validation_retries`` times.
    ``tools``: functions offered to the model (its tool calls are in the result).
    ``key``: the call key (default ``llm[n]``). ``retries`` / ``retry_delay_seconds``:
    transport retries (429, 5xx). ``on_token``: called with each piece of text as
    the model streams it (only the final answer is durable). ``stream=True``:
    return an `LLMStream` at once instead (iterate it for the text as it streams,
    then read ``.result``). ``tags``: added to the step's tags, which always hold
    the provider's name: a global limit of that name (``openai``) paces the calls
    in every process. Other keyword arguments (temperature, max_tokens, ...)
    go to the provider and are recorded.
    """
    task, spec = _prepare(
        model,
        messages,
        output_type=output_type,
        tools=tools,
        key=key,
        max_validation_retries=max_validation_retries,
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
        timeout_seconds=timeout_seconds,
        redact=redact,
        on_token=on_token,
        params=params,
        tags=tags,
    )
    flow_ctx = _check_budget()
    if stream:
        from legato.ai.stream import LLMStream

        return LLMStream(task, spec, flow_ctx)
    result = task(spec)
    add_spend(flow_ctx, result)
    return result


def add_spend(flow_ctx: FlowRunContext | None, result: Any) -> None:
    """Count an answered call against the flow run's budget."""
    if flow_ctx is not None and isinstance(result, LLMResult):
        spend_of(flow_ctx).add(result.usage, result.cost_usd)


def _check_budget() -> FlowRunContext | None:
    """The current flow run (None outside one), after checking its budget allows a call."""
    flow_ctx = FLOW_CONTEXT.get()
    if flow_ctx is not None:
        task_ctx = TASK_CONTEXT.get()
        enforce(flow_ctx, in_task=task_ctx is not None and task_ctx.flow_ctx is flow_ctx)
    return flow_ctx


def _prepare(
    model: Any,
    messages: Any,
    *,
    output_type: Any,
    tools: Sequence[Callable[..., Any] | ToolSpec] | None,
    key: str | None,
    max_validation_retries: int,
    retries: int,
    retry_delay_seconds: float | Sequence[float] | None,
    timeout_seconds: float | None,
    redact: Redactor | None,
    on_token: TokenCallback | None,
    params: dict[str, Any],
    tags: Sequence[str] | None = None,
) -> tuple[Task[[ModelCall], LLMResult[Any]], ModelCall]:
    """The step task (with the call's options) and its argument."""
    if not isinstance(max_validation_retries, int) or max_validation_retries < 0:
        raise ConfigurationError(
            f"legato.ai.call: max_validation_retries must be a whole number >= 0, "
            f"got {max_validation_retries!r}"
        )
    client = _resolve(model)
    prompt, chat = _messages_of(messages)
    request = ModelRequest(
        messages=chat,
        tools=tuple(tool_spec(t) for t in tools or ()),
        output=None if output_type is None or output_type is str else output_spec(output_type),
        params=params,
    )
    spec = ModelCall(
        client,
        request,
        output_type=output_type,
        max_tries=max_validation_retries + 1,
        prompt=prompt,
        redact=redact,
        on_token=on_token,
    )
    # Tagged with the provider, so a global limit of that name (legato limit set openai
    # 60 --per 60) paces every call to it, in every process.
    options: dict[str, Any] = {
        "retries": retries,
        "timeout_seconds": timeout_seconds,
        "tags": [client.provider, *(tags or ())],
    }
    if key is not None:
        options["call_key"] = key
    if retry_delay_seconds is not None:
        options["retry_delay_seconds"] = retry_delay_seconds
    return _step_task(options), spec


_tasks: dict[tuple[Any, ...], Task[[ModelCall], LLMResult[Any]]] = {}
_tasks_lock = threading.Lock()


def _step_task(options: dict[str, Any]) -> Task[[ModelCall], LLMResult[Any]]:
    """The step task with these options: built once per distinct options (a Task costs
    tens of microseconds to build), except with a call key, which is per call."""
    if "call_key" in options:
        return _LLM_TASK.with_options(**options)
    delays = options.get("retry_delay_seconds")
    mark = (
        tuple(options["tags"]),
        options["retries"],
        options["timeout_seconds"],
        tuple(delays) if isinstance(delays, (list, tuple)) else delays,
    )
    with _tasks_lock:
        task = _tasks.get(mark)
    if task is None:
        task = _LLM_TASK.with_options(**options)
        with _tasks_lock:
            if len(_tasks) < 256:
                _tasks[mark] = task
    return task
