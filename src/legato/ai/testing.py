"""A model for tests: scripted answers and failures, no network.

    fake = FakeModel.returning(["positive", {"label": "bug"}])
    fake = FakeModel.raising(RateLimitError, times=2, retry_after=0).returning(["ok"])
    fake = FakeModel.from_recording(run_id)      # the answers a recorded run got

``FakeModel(stream_delay=0.2)`` streams its answers word by word, waiting that
long between words. Steps are used in the order they were added; each request
takes the next one. ``fake.requests`` holds every request it was asked (what
tests count). ``RateLimitError`` and ``ServerError`` are the provider failures
the durable step retries (`ModelRateLimitError`, `ModelUnavailableError`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from legato._llm_records import LLMUsage
from legato.ai.types import ModelRequest, ModelResponse, StreamChunk, ToolCall
from legato.errors import (
    ConfigurationError,
    ModelError,
    ModelRateLimitError,
    ModelUnavailableError,
)

# The failures a provider gives, by the names tests reach for:
# ``FakeModel.raising(RateLimitError, times=2)``.
RateLimitError = ModelRateLimitError
ServerError = ModelUnavailableError

Answer = Any  # str | dict | list | pydantic model | ModelResponse | ToolCall(s) | callable


class _either:
    """A method usable on the class (starting a new FakeModel) or on an instance."""

    def __init__(self, fn: Callable[..., FakeModel]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, instance: FakeModel | None, owner: type[FakeModel]) -> Callable[..., Any]:
        target = instance if instance is not None else owner()

        def bound(*args: Any, **kwargs: Any) -> FakeModel:
            return self.fn(target, *args, **kwargs)

        return bound


class FakeModel:
    """A `ModelClient` answering from a script (provider ``fake``)."""

    def __init__(
        self,
        *,
        model: str = "fake-model",
        usage: LLMUsage | None = None,
        stream_delay: float = 0.0,
    ) -> None:
        if isinstance(stream_delay, bool) or not isinstance(stream_delay, (int, float)):
            raise ConfigurationError(
                f"FakeModel: stream_delay must be seconds, got {stream_delay!r}"
            )
        if stream_delay < 0:
            raise ConfigurationError(f"FakeModel: stream_delay must be >= 0, got {stream_delay!r}")
        self._model = model
        self._usage = usage
        self._stream_delay = float(stream_delay)
        self._steps: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self.requests: list[ModelRequest] = []

    @property
    def provider(self) -> str:
        return "fake"

    @property
    def model(self) -> str:
        return self._model

    @_either
    def returning(self, answers: Iterable[Answer] | Callable[[ModelRequest], Answer]) -> FakeModel:
        """Answer the next requests with these (a callable answers every later request)."""
        if callable(answers):
            self._steps.append(("function", answers))
            return self
        if isinstance(answers, (str, bytes)):
            raise ConfigurationError(
                "FakeModel.returning takes a list of answers; wrap the one answer: [answer]"
            )
        self._steps.extend(("answer", a) for a in answers)
        return self

    @_either
    def raising(
        self,
        error: type[BaseException] | BaseException,
        times: int = 1,
        *,
        retry_after: float | None = None,
    ) -> FakeModel:
        """Fail the next ``times`` requests with ``error`` (a class or an instance)."""
        if not isinstance(times, int) or times < 1:
            raise ConfigurationError(f"FakeModel.raising: times must be >= 1, got {times!r}")
        self._steps.extend(("raise", (error, retry_after)) for _ in range(times))
        return self

    @classmethod
    def from_recording(cls, run_id: str, *, store: Any = None) -> FakeModel:
        """The answers a recorded run's model calls got, in the order they were made."""
        from legato.ai.convert import response_from_json

        owned = store is None
        if owned:
            from legato.store import open_store

            store = open_store()
        try:
            records = store.list_llm_calls(run_id)
        finally:
            if owned:
                store.close()
        if not records:
            raise ConfigurationError(
                f"flow run {run_id} has no recorded model calls to replay; check the run id "
                "(legato runs) and that it made legato.ai calls"
            )
        fake = cls(model=records[0].model)
        fake._steps.extend(("answer", response_from_json(r.response_json)) for r in records)
        return fake

    # -- ModelClient ----------------------------------------------------------

    def request(self, request: ModelRequest) -> ModelResponse:
        with self._lock:
            self.requests.append(request)
            if not self._steps:
                raise ConfigurationError(
                    f"FakeModel has no answer left for request {len(self.requests)}; give it "
                    "more with .returning([...])"
                )
            kind, value = self._steps[0]
            if kind != "function":
                self._steps.pop(0)
        if kind == "raise":
            raise self._error(*value)
        answer = value(request) if kind == "function" else value
        return self._response(request, answer)

    def stream(self, request: ModelRequest) -> Iterator[StreamChunk | ModelResponse]:
        response = self.request(request)
        words = response.text.split(" ")
        for index, word in enumerate(words):
            if index and self._stream_delay:
                time.sleep(self._stream_delay)  # a slow model, as `stream_delay=` asked
            yield StreamChunk(word if index == 0 else " " + word)
        yield response

    # -- helpers ----------------------------------------------------------------

    def _error(self, error: type[BaseException] | BaseException, retry_after: float | None) -> Any:
        if isinstance(error, BaseException):
            return error
        if issubclass(error, ModelRateLimitError):
            return error("fake", self._model, retry_after, "scripted by FakeModel.raising")
        if issubclass(error, ModelError):
            return error(f"fake:{self._model} failed (scripted by FakeModel.raising)")
        return error("scripted by FakeModel.raising")

    def _response(self, request: ModelRequest, answer: Answer) -> ModelResponse:
        if isinstance(answer, ModelResponse):
            return answer
        calls: tuple[ToolCall, ...] = ()
        if isinstance(answer, ToolCall):
            calls, text = (answer,), ""
        elif isinstance(answer, (list, tuple)) and answer and isinstance(answer[0], ToolCall):
            calls, text = tuple(answer), ""
        elif isinstance(answer, str):
            text = answer
        elif hasattr(answer, "model_dump_json"):
            text = answer.model_dump_json()
        else:
            text = json.dumps(answer)
        usage = self._usage or LLMUsage(
            input_tokens=1 + sum(len(m.content) for m in request.messages) // 4,
            output_tokens=1 + (len(text) + sum(len(c.arguments) for c in calls)) // 4,
        )
        return ModelResponse(
            text=text,
            model=self._model,
            usage=usage,
            finish_reason="tool_calls" if calls else "stop",
            tool_calls=calls,
            raw={"fake": True},
        )
