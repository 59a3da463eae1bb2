"""OpenTelemetry traces of flow runs (the ``otel`` extra: ``pip install 'legato[otel]'``).

On when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set or ``LEGATO_OTEL=1`` (read once, at
the first flow run of the process; `configure` reads again). A run is one trace:

- ``flow NAME``: the run's span. Its trace id and span id are chosen when the run
  is created and stored with the run (``FlowRun.trace_context``, a W3C
  traceparent, followed by the span id of its parent when it has one), so every
  process that ever executes the run continues the same trace. It is emitted
  once, by the process that first brings the run to completed, failed or
  cancelled (a later resume of an ended run adds attempts under that span).
- ``attempt N``: each time a process starts or resumes the run (first run,
  retry, resume, worker takeover), a child of the run span. Its span id is
  derived from the run span's id and N, so an attempt whose process died is
  emitted by the process that runs the next attempt (as crashed), with the
  same id its task spans already point at.
- ``task CALL_KEY``: each task call, a child of its attempt (or of the task
  that called it); a call answered from an earlier attempt is a zero-length
  span with ``legato.replayed=true``. Sleeps, pauses and retry waits are events
  on the attempt span.

A subflow's run span is a child of the calling task's (or attempt's) span, and
a run created inside a flow run (``run_deployment``) or inside an active
OpenTelemetry span joins that trace. Parameters are recorded only with
``LEGATO_OTEL_RECORD_PARAMS=1``. Lines of ``get_run_logger()`` carry the ids of
their span (``otelTraceID``/``otelSpanID``), stored with them (``LogRecord.trace_id``
/ ``span_id``).

Nothing here imports ``opentelemetry`` until traces are on: off, the engine
pays nothing per task call (it already checks for an observer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.tracing._otel import RunTracer

__all__ = ["active", "configure", "flush", "run_context"]

# The tracer when traces are on, once `active()` has read the settings.
ACTIVE: RunTracer | None = None
_checked = False
_provider: Any = None


def active() -> RunTracer | None:
    """The run tracer, or None when traces are off (the settings are read once)."""
    global ACTIVE, _checked
    if _checked:
        return ACTIVE
    from legato import settings

    if settings.otel_enabled():
        ACTIVE = _make(_provider)
    _checked = True
    return ACTIVE


def configure(tracer_provider: Any = None, *, enabled: bool | None = None) -> None:
    """Send legato's spans to ``tracer_provider`` (an ``opentelemetry.sdk`` provider;
    default: the global one if it is an SDK provider, else one legato makes that
    exports over OTLP/HTTP) and read the settings again at the next run.
    ``enabled=True``/``False`` overrides ``LEGATO_OTEL`` / the OTLP endpoint."""
    global ACTIVE, _checked, _provider
    _provider = tracer_provider
    ACTIVE = None
    _checked = False
    if enabled is not None:
        ACTIVE = _make(tracer_provider) if enabled else None
        _checked = True


def run_context() -> str | None:
    """The trace context to store with a run being created (None when traces are off)."""
    tracer = ACTIVE if _checked else active()
    return None if tracer is None else tracer.new_run_context()


def flush() -> None:
    """Export the spans not sent yet, when traces are on (a forked worker child calls
    this before it leaves with ``os._exit``, which skips the exporters' own flush)."""
    if ACTIVE is not None:
        ACTIVE.flush()


def _make(provider: Any) -> RunTracer:
    try:
        from legato.tracing._otel import RunTracer

        return RunTracer(provider)
    except ImportError as exc:
        from legato.errors import MissingExtraError

        raise MissingExtraError(
            "otel",
            exc.name or "opentelemetry-sdk",
            "tracing (LEGATO_OTEL=1 or OTEL_EXPORTER_OTLP_ENDPOINT is set)",
        ) from None
