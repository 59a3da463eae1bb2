"""Streamed and async model calls: `call(..., stream=True)` and `acall`.

    with ai.call(model, "Write a haiku", stream=True) as stream:
        for piece in stream:
            print(piece, end="")
    answer = stream.result                  # the LLMResult, as call() returns it

    result = await ai.acall(model, "Summarize ...")        # in an async flow
    stream = await ai.acall(model, "...", stream=True)
    async for piece in stream: ...

The model call is the same durable step as `call` makes (task run ``llm``). Its
key is taken when the call is made, in the caller's thread (so keys stay
deterministic whatever order the threads run in); the step then runs on a
thread of its own, in a copy of the caller's context, handing each piece of
text through a queue. A call answered by an earlier execution yields its whole
recorded text as one piece. Only the final answer is durable.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from legato.ai.prompts import Prompt, RenderedPrompt
from legato.ai.results import LLMResult
from legato.ai.step import (
    DEFAULT_RETRIES,
    ModelCall,
    Redactor,
    TokenCallback,
    _check_budget,
    _prepare,
    add_spend,
)
from legato.ai.types import Message, ToolSpec
from legato.tasks import Task

if TYPE_CHECKING:
    from legato.engine.context import FlowRunContext

_END = object()


class _Run:
    """One streamed step: its key taken now, its body on a thread of its own."""

    def __init__(
        self,
        task: Task[[ModelCall], LLMResult[Any]],
        spec: ModelCall,
        flow_ctx: FlowRunContext | None,
        deliver: Callable[[object], None],
        *,
        streaming: bool = True,
    ) -> None:
        from legato.futures import LegatoFuture
        from legato.task_runners.threads import TaskHandle

        self.handle = TaskHandle()
        user = spec.on_token
        live = None
        run: Callable[[], Any]
        if flow_ctx is None:  # outside a flow: a standalone tracked call
            run = lambda: task(spec)  # noqa: E731
        else:
            from legato.engine.llm_stream import PartialText
            from legato.engine.task_engine import TaskCall

            step = TaskCall(task, flow_ctx, (spec,), {}, None)  # takes the key here
            done, value = step.replayed()
            if done:
                if isinstance(value, LLMResult) and value.text:
                    deliver(value.text)
                add_spend(flow_ctx, value)
                self.handle._finish(value, None)
                deliver(_END)
                return
            live = PartialText(flow_ctx, step.call_key) if streaming else None
            run = step.run

        streamed: list[bool] = []

        def on_token(piece: str) -> None:
            if not streamed:
                streamed.append(True)
            if live is not None:
                live.add(piece)
            deliver(piece)
            if user is not None:
                user(piece)

        if streaming:
            spec.on_token = on_token
        context = contextvars.copy_context()

        def work() -> None:
            value: Any = None
            error: BaseException | None = None
            try:
                value = context.run(run)
                if streaming and not streamed and isinstance(value, LLMResult) and value.text:
                    deliver(value.text)  # answered from its record: the whole text at once
                if flow_ctx is not None:
                    add_spend(flow_ctx, value)
            except BaseException as exc:
                error = exc
            finally:
                # Everything is delivered before the call counts as ended: whoever waits
                # for the end (and may then close its event loop) gets nothing after it.
                if live is not None:
                    context.run(live.close)
                deliver(_END)
                self.handle._finish(None if error is not None else value, error)

        thread = threading.Thread(target=work, name="legato-llm-stream", daemon=True)
        if flow_ctx is not None:
            # the flow run waits for the call before it ends, as for a submitted task
            flow_ctx.outstanding.append(
                LegatoFuture(step.task_run_id, step.call_key, task.name, self.handle)
            )
        thread.start()


class LLMStream:
    """A model call in flight: iterate it for the text as the model streams it.

    ``.result`` is the `LLMResult` (blocking until the call ends); a failed call
    raises from the iteration and from ``.result``. ``with`` waits for the call
    to end when the block is left.
    """

    def __init__(
        self,
        task: Task[[ModelCall], LLMResult[Any]],
        spec: ModelCall,
        flow_ctx: FlowRunContext | None,
    ) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._ended = False
        self._run = _Run(task, spec, flow_ctx, self._queue.put)

    def __iter__(self) -> Iterator[str]:
        while not self._ended:
            item = self._queue.get()
            if item is _END:
                self._ended = True
                break
            yield str(item)
        self._run.handle.result()  # a failed call raises here

    @property
    def result(self) -> LLMResult[Any]:
        """The call's `LLMResult`, once it ends (raises what the call raised)."""
        value: LLMResult[Any] = self._run.handle.result()
        return value

    def done(self) -> bool:
        return bool(self._run.handle.done())

    def close(self) -> None:
        """Wait for the call to end (its outcome stays in ``.result``)."""
        self._run.handle.wait()

    def __enter__(self) -> LLMStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncLLMStream:
    """`LLMStream` for async code: ``async for piece in stream``, ``await stream.wait()``."""

    def __init__(
        self,
        task: Task[[ModelCall], LLMResult[Any]],
        spec: ModelCall,
        flow_ctx: FlowRunContext | None,
        *,
        streaming: bool = True,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._ended = False
        self._run = _Run(task, spec, flow_ctx, self._deliver, streaming=streaming)

    def _deliver(self, item: object) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:
            # The caller's event loop is closed: nobody is left to read the pieces, and
            # the call must still end (its handle is finished right after this).
            if not self._loop.is_closed():
                raise

    def __aiter__(self) -> AsyncIterator[str]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[str]:
        while not self._ended:
            item = await self._queue.get()
            if item is _END:
                self._ended = True
                break
            yield str(item)
        self._run.handle.result()  # done by now: a failed call raises here

    async def wait(self) -> LLMResult[Any]:
        """Wait (without blocking the event loop) for the call's `LLMResult`."""
        await self._ended_call()
        value: LLMResult[Any] = self._run.handle.result()
        return value

    async def _ended_call(self) -> None:
        handle = self._run.handle
        if handle.done():
            return
        ended: asyncio.Future[None] = self._loop.create_future()

        def wake(_: Any) -> None:
            self._loop.call_soon_threadsafe(_settle, ended)

        handle.add_done_callback(wake)
        await ended

    @property
    def result(self) -> LLMResult[Any]:
        """The call's `LLMResult` once it ended (after the iteration or `wait`)."""
        value: LLMResult[Any] = self._run.handle.result()
        return value

    async def __aenter__(self) -> AsyncLLMStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._ended_call()


def _settle(ended: asyncio.Future[None]) -> None:
    if not ended.done():  # not when the waiter was cancelled meanwhile
        ended.set_result(None)


async def acall(
    model: Any,
    messages: str | Prompt | RenderedPrompt | Sequence[Message | Mapping[str, Any]],
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
) -> Any:
    """`legato.ai.call` for async code: the same durable step, same arguments, without
    blocking the event loop. Returns the `LLMResult`; with ``stream=True`` an
    `AsyncLLMStream` (``async for piece in stream``, then ``stream.result``).

    The call key is taken when ``acall`` is called, so calls inside
    ``asyncio.gather`` keep deterministic keys across a resume.
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
    running = AsyncLLMStream(task, spec, flow_ctx, streaming=stream)
    if stream:
        return running
    return await running.wait()
