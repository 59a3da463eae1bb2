"""The OpenTelemetry side of `legato.tracing` (imported only when traces are on)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from legato import settings
from legato.errors import ConfigurationError, PauseSignal
from legato.records import FlowRun, LogRecord, TaskRun
from legato.states import State, StateType

if TYPE_CHECKING:
    from legato.engine.observer import RunObserver

_ENDED = (StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED)


def _unfinished(before: FlowRun) -> bool:
    """Did the run's last attempt never end (its process died or lost the run)? Found
    crashed or running on resume, or claimed again by a worker after its lease lapsed."""
    if before.state in (StateType.CRASHED, StateType.RUNNING):
        return True
    message = before.state_message or ""
    return before.state is StateType.PENDING and message.startswith("claimed again")


class _ChosenIds(IdGenerator):
    """Random ids, except for the span legato is emitting with ids it chose."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self._chosen = threading.local()

    @contextmanager
    def chosen(self, trace_id: int, span_id: int) -> Iterator[None]:
        self._chosen.ids = (trace_id, span_id)
        try:
            yield
        finally:
            self._chosen.ids = None

    def generate_span_id(self) -> int:
        ids = getattr(self._chosen, "ids", None)
        return self._random.generate_span_id() if ids is None else int(ids[1])

    def generate_trace_id(self) -> int:
        ids = getattr(self._chosen, "ids", None)
        return self._random.generate_trace_id() if ids is None else int(ids[0])


@dataclass
class _Attempt:
    run: FlowRun
    number: int
    trace_id: int
    span_id: int
    context: SpanContext
    start_ns: int
    run_span_emitted: bool = False  # the run had ended (and emitted its span) before
    events: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)


def _context(trace_id: int, span_id: int) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1))


def _ns(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1e9)


def run_ids(run: FlowRun) -> tuple[int, int, int | None]:
    """(trace id, run span id, parent span id or None) of a run."""
    text = run.trace_context
    if text:
        head, _, parent = text.partition(" ")
        parts = head.split("-")
        if len(parts) == 4:
            try:
                return int(parts[1], 16), int(parts[2], 16), int(parent, 16) if parent else None
            except ValueError:
                pass
    # A run created while traces were off: ids derived from its id, stable everywhere.
    digest = hashlib.sha256(run.id.encode()).digest()
    return int.from_bytes(digest[:16]) or 1, int.from_bytes(digest[16:24]) or 1, None


def attempt_span_id(run_span_id: int, attempt: int) -> int:
    """The span id of a run's attempt N: any process computes the same one."""
    digest = hashlib.sha256(f"{run_span_id:016x}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:8]) or 1


class RunTracer:
    """Turns the engine's calls (run created, attempt started/ended, task calls) into spans."""

    def __init__(self, provider: Any = None) -> None:
        if provider is None:
            provider = trace.get_tracer_provider()
            if not isinstance(provider, TracerProvider):
                provider = _otlp_provider()
        if not isinstance(provider, TracerProvider):
            raise ConfigurationError(
                f"legato's traces need an opentelemetry.sdk TracerProvider, got "
                f"{type(provider).__name__}; pass one to legato.tracing.configure()"
            )
        tracer = provider.get_tracer("legato")
        if not isinstance(tracer, SdkTracer):
            raise ConfigurationError(
                "legato's traces need the OpenTelemetry SDK's tracer; "
                "pass an opentelemetry.sdk TracerProvider to legato.tracing.configure()"
            )
        self._provider = provider
        self._ids = _ChosenIds()
        tracer.id_generator = self._ids
        self._tracer = tracer
        self.record_params = settings.otel_record_params()
        self._attempts: dict[str, _Attempt] = {}
        self._tasks: dict[str, Span] = {}
        self._ended: set[tuple[str, int]] = set()

    def flush(self) -> None:
        """Export what the provider still holds (before a process leaves by os._exit)."""
        self._provider.force_flush(5000)

    # -- runs ----------------------------------------------------------------------

    def new_run_context(self) -> str:
        """A new run's trace context: a child of the current legato or OTel span, if any."""
        parent = self._current_parent()
        random = self._ids._random
        trace_id = parent.trace_id if parent is not None else random.generate_trace_id()
        text = f"00-{trace_id:032x}-{random.generate_span_id():016x}-01"
        return text if parent is None else f"{text} {parent.span_id:016x}"

    def _current_parent(self) -> SpanContext | None:
        from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT

        flow_ctx = FLOW_CONTEXT.get()
        if flow_ctx is not None:
            task_ctx = TASK_CONTEXT.get()
            if task_ctx is not None and task_ctx.flow_ctx is flow_ctx:
                span = self._tasks.get(task_ctx.task_run_id)
                if span is not None:
                    return span.get_span_context()
            attempt = self._attempts.get(flow_ctx.run.id)
            if attempt is not None:
                return attempt.context
        current = trace.get_current_span().get_span_context()
        return current if current.is_valid else None

    def observer(self, inner: RunObserver | None) -> TracingObserver:
        if isinstance(inner, TracingObserver):
            return inner
        return TracingObserver(self, inner)

    # -- attempts ------------------------------------------------------------------

    def attempt_started(self, before: FlowRun, started: FlowRun) -> None:
        trace_id, run_span, _ = run_ids(started)
        previous = before.attempts
        if previous >= 1 and _unfinished(before) and (started.id, previous) not in self._ended:
            self._emit_crashed(before, trace_id, run_span)
        span_id = attempt_span_id(run_span, started.attempts)
        self._attempts[started.id] = _Attempt(
            run=started,
            number=started.attempts,
            trace_id=trace_id,
            span_id=span_id,
            context=_context(trace_id, span_id),
            start_ns=time.time_ns(),
            run_span_emitted=previous >= 1 and before.state in _ENDED,
        )

    def _emit_crashed(self, before: FlowRun, trace_id: int, run_span: int) -> None:
        """The previous attempt's process died before it could end its span: end it now."""
        owner = before.owner
        start = _ns(before.start_time) or time.time_ns()
        if owner is not None and owner.pid_started is not None:
            start = max(start, int(owner.pid_started * 1e9))
        end = _ns(before.end_time) or _ns(before.heartbeat_at) or time.time_ns()
        attempt = _Attempt(
            run=before,
            number=before.attempts,
            trace_id=trace_id,
            span_id=attempt_span_id(run_span, before.attempts),
            context=_context(trace_id, run_span),
            start_ns=start,
        )
        self._emit_attempt(attempt, StateType.CRASHED, before.state_message, max(end, start))

    def event(self, run_id: str, name: str, attributes: dict[str, Any]) -> None:
        attempt = self._attempts.get(run_id)
        if attempt is not None:
            attempt.events.append((name, attributes, time.time_ns()))

    def attempt_ended(
        self,
        run: FlowRun,
        state: State,
        outcome: BaseException | None,
        retry_in: float | None,
    ) -> None:
        attempt = self._attempts.pop(run.id, None)
        if attempt is None:
            return
        if state.type is StateType.CRASHED:
            return  # the process that takes the run over ends this attempt's span
        self._ended.add((run.id, attempt.number))
        if isinstance(outcome, PauseSignal):
            attempt.events.append(
                ("legato.pause", {"legato.pause.key": str(outcome.detail.key)}, time.time_ns())
            )
        if retry_in is not None:
            wait = {"legato.retry.delay_seconds": retry_in}
            attempt.events.append(("legato.retry", wait, time.time_ns()))
        self._emit_attempt(attempt, state.type, state.message, time.time_ns())
        if retry_in is None and state.type in _ENDED and not attempt.run_span_emitted:
            self._emit_run(run, attempt, state)

    def _emit_attempt(
        self, attempt: _Attempt, state: StateType, message: str | None, end_ns: int
    ) -> None:
        run = attempt.run
        _, run_span, _ = run_ids(run)
        parent = set_span_in_context(NonRecordingSpan(_context(attempt.trace_id, run_span)))
        attributes = _run_attributes(run)
        attributes["legato.attempt"] = attempt.number
        attributes["legato.state"] = state.value
        with self._ids.chosen(attempt.trace_id, attempt.span_id):
            span = self._tracer.start_span(
                f"attempt {attempt.number}",
                context=parent,
                attributes=attributes,
                start_time=attempt.start_ns,
            )
        for name, event_attributes, at in attempt.events:
            span.add_event(name, event_attributes, timestamp=at)
        _set_status(span, state, message)
        span.end(end_time=max(end_ns, attempt.start_ns))

    def _emit_run(self, run: FlowRun, attempt: _Attempt, state: State) -> None:
        trace_id, run_span, parent_span = run_ids(run)
        context = None
        if parent_span is not None:
            context = set_span_in_context(NonRecordingSpan(_context(trace_id, parent_span)))
        attributes = _run_attributes(run)
        attributes["legato.attempt"] = attempt.number
        attributes["legato.state"] = state.type.value
        if self.record_params:
            attributes["legato.parameters"] = json.dumps(run.parameters, default=str)
        start = _ns(run.created) or attempt.start_ns
        with self._ids.chosen(trace_id, run_span):
            span = self._tracer.start_span(
                f"flow {run.flow_name}", context=context, attributes=attributes, start_time=start
            )
        _set_status(span, state.type, state.message)
        span.end(end_time=max(time.time_ns(), start))

    # -- task calls ----------------------------------------------------------------

    def _task_parent(self, task_run: TaskRun) -> Any:
        parent_task = task_run.parent_task_run_id
        span = self._tasks.get(parent_task) if parent_task is not None else None
        if span is not None:
            return set_span_in_context(span)
        attempt = self._attempts.get(task_run.flow_run_id)
        if attempt is None:
            return None
        return set_span_in_context(NonRecordingSpan(attempt.context))

    def task_started(self, task_run: TaskRun) -> None:
        parent = self._task_parent(task_run)
        if parent is None:
            return
        self._tasks[task_run.id] = self._tracer.start_span(
            f"task {task_run.call_key}",
            context=parent,
            attributes=self._task_attributes(task_run),
        )

    def task_finished(self, task_run: TaskRun) -> None:
        span = self._tasks.pop(task_run.id, None)
        if span is None:
            return
        span.set_attribute("legato.state", task_run.state.value)
        span.set_attribute("legato.attempt", task_run.attempts)
        error = task_run.error
        _set_status(span, task_run.state, error.message if error is not None else None)
        span.end()

    def task_replayed(self, task_run: TaskRun) -> None:
        parent = self._task_parent(task_run)
        if parent is None:
            return
        attributes = self._task_attributes(task_run)
        attributes["legato.replayed"] = True
        attributes["legato.state"] = task_run.state.value
        attributes["legato.attempt"] = task_run.attempts
        now = time.time_ns()
        span = self._tracer.start_span(
            f"task {task_run.call_key}", context=parent, attributes=attributes, start_time=now
        )
        span.end(end_time=now)

    def _task_attributes(self, task_run: TaskRun) -> dict[str, Any]:
        attempt = self._attempts.get(task_run.flow_run_id)
        attributes: dict[str, Any] = {
            "legato.flow_run.id": task_run.flow_run_id,
            "legato.task.call_key": task_run.call_key,
            "legato.task_run.id": task_run.id,
        }
        if attempt is not None:
            attributes.update(_run_attributes(attempt.run))
        return attributes

    # -- logs ----------------------------------------------------------------------

    def log_ids(self, run_id: str, task_run_id: str | None) -> dict[str, str]:
        """otelTraceID / otelSpanID for a log line of this run (and task call)."""
        span = self._tasks.get(task_run_id) if task_run_id is not None else None
        if span is not None:
            context = span.get_span_context()
            return _log_ids(context.trace_id, context.span_id)
        attempt = self._attempts.get(run_id)
        return {} if attempt is None else _log_ids(attempt.trace_id, attempt.span_id)


def _log_ids(trace_id: int, span_id: int) -> dict[str, str]:
    return {"otelTraceID": f"{trace_id:032x}", "otelSpanID": f"{span_id:016x}"}


class TracingObserver:
    """The engine's observer when traces are on: task spans, then the inner observer."""

    __slots__ = ("inner", "tracer")

    def __init__(self, tracer: RunTracer, inner: RunObserver | None) -> None:
        self.tracer = tracer
        self.inner = inner

    def flow_started(self, run: FlowRun) -> None:
        if self.inner is not None:
            self.inner.flow_started(run)

    def flow_finished(self, run: FlowRun, state: State) -> None:
        if self.inner is not None:
            self.inner.flow_finished(run, state)

    def task_started(self, task_run: TaskRun) -> None:
        self.tracer.task_started(task_run)
        if self.inner is not None:
            self.inner.task_started(task_run)

    def task_finished(self, task_run: TaskRun) -> None:
        self.tracer.task_finished(task_run)
        if self.inner is not None:
            self.inner.task_finished(task_run)

    def task_replayed(self, task_run: TaskRun) -> None:
        self.tracer.task_replayed(task_run)

    def log(self, record: LogRecord) -> None:
        if self.inner is not None:
            self.inner.log(record)


def _run_attributes(run: FlowRun) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "legato.flow_run.id": run.id,
        "legato.flow.name": run.flow_name,
    }
    if run.deployment is not None:
        attributes["legato.deployment.name"] = run.deployment
    return attributes


def _set_status(span: Span, state: StateType, message: str | None) -> None:
    if state in (StateType.FAILED, StateType.CRASHED):
        span.set_status(Status(StatusCode.ERROR, message or state.value))


def _otlp_provider() -> TracerProvider:
    """legato's own provider: spans exported over OTLP/HTTP (OTEL_EXPORTER_OTLP_* apply)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
