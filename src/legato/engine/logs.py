"""Run loggers: `get_run_logger()` and `print` capture (``log_prints``).

Log lines go to the run's buffer, which the engine commits together with the
next task run record (and the monitor flushes about once a second), and are
echoed to stderr.
"""

from __future__ import annotations

import builtins
import logging
import os
import sys
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from legato import tracing as _tracing
from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT, FlowRunContext
from legato.errors import TaskCallError
from legato.records import LogRecord, utcnow

_base_logger = logging.getLogger("legato.runs")
_setup_lock = threading.Lock()
_configured = False
# Set inside `disable_run_logger()`: run loggers write nowhere.
_DISABLED: ContextVar[bool] = ContextVar("legato_run_logger_disabled", default=False)


class _StderrHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` (looked up per line, so rich's live
    display and pytest's capture see it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _StoreHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        flow_ctx: FlowRunContext | None = getattr(record, "legato_flow_ctx", None)
        if flow_ctx is None:
            return
        flow_ctx.add_log(
            LogRecord(
                flow_run_id=flow_ctx.run.id,
                timestamp=utcnow(),
                level=record.levelno,
                message=record.getMessage()
                if not record.exc_info
                else record.getMessage() + "\n" + self.formatException(record.exc_info),
                logger=record.name,
                task_run_id=getattr(record, "legato_task_run_id", None),
                # Set by get_run_logger() only when traces are on (legato.tracing).
                trace_id=getattr(record, "otelTraceID", None),
                span_id=getattr(record, "otelSpanID", None),
            )
        )

    def formatException(self, exc_info: Any) -> str:
        return logging.Formatter().formatException(exc_info)


def _configure() -> None:
    global _configured
    with _setup_lock:
        if _configured:
            return
        level_name = os.environ.get("LEGATO_LOGGING_LEVEL", "INFO").upper()
        _base_logger.setLevel(getattr(logging, level_name, logging.INFO))
        _base_logger.propagate = False
        _base_logger.addHandler(_StoreHandler())
        if os.environ.get("LEGATO_LOG_TO_CONSOLE", "1") != "0":
            console = _StderrHandler()
            console.setFormatter(
                logging.Formatter(
                    "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s", "%H:%M:%S"
                )
            )
            _base_logger.addHandler(console)
        _configured = True


class RunLogger(logging.LoggerAdapter):
    """A logger bound to a flow run (and task run); what `get_run_logger()` returns."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


def get_run_logger() -> RunLogger:
    """A logger whose lines are stored with the current flow run / task run."""
    if _DISABLED.get():
        return RunLogger(_silent_logger(), {})
    flow_ctx = FLOW_CONTEXT.get()
    if flow_ctx is None:
        raise TaskCallError(
            "get_run_logger() was called outside a flow run; call it inside a @flow or "
            "@task function, or use the standard logging module"
        )
    _configure()
    task_ctx = TASK_CONTEXT.get()
    if task_ctx is not None and task_ctx.flow_ctx is flow_ctx:
        name = f"legato.runs.task.{task_ctx.call_key}"
        extra = {"legato_flow_ctx": flow_ctx, "legato_task_run_id": task_ctx.task_run_id}
    else:
        name = f"legato.runs.flow.{flow_ctx.run.flow_name}"
        extra = {"legato_flow_ctx": flow_ctx, "legato_task_run_id": None}
    tracer = _tracing.ACTIVE
    if tracer is not None:  # traces on: each line carries otelTraceID / otelSpanID
        own_task = task_ctx is not None and task_ctx.flow_ctx is flow_ctx
        task_run_id = task_ctx.task_run_id if task_ctx is not None and own_task else None
        extra.update(tracer.log_ids(flow_ctx.run.id, task_run_id))
    return RunLogger(logging.getLogger(name), extra)


def _silent_logger() -> logging.Logger:
    logger = logging.getLogger("legato.runs.disabled")
    logger.propagate = False
    logger.disabled = True
    return logger


@contextmanager
def disable_run_logger() -> Iterator[None]:
    """Silence run loggers inside the block, and let `get_run_logger()` work outside a
    run there: for calling a task's or flow's function (``.fn``) directly in tests."""
    token = _DISABLED.set(True)
    try:
        yield
    finally:
        _DISABLED.reset(token)


def ensure_logging() -> None:
    _configure()


# --- print capture -----------------------------------------------------------

_original_print = builtins.print
_print_installed = False


def _capturing_print(*args: Any, **kwargs: Any) -> None:
    file = kwargs.get("file")
    if file is None or file is sys.stdout:
        flow_ctx = FLOW_CONTEXT.get()
        if flow_ctx is not None and not _DISABLED.get():
            task_ctx = TASK_CONTEXT.get()
            wanted = task_ctx.log_prints if task_ctx is not None else flow_ctx.log_prints
            if wanted:
                sep = kwargs.get("sep", " ")
                sep = " " if sep is None else sep
                get_run_logger().info(sep.join(str(a) for a in args))
                return
    _original_print(*args, **kwargs)


def install_print_capture() -> None:
    """Route ``print`` to the run logger in runs with ``log_prints=True``."""
    global _print_installed
    if not _print_installed:
        builtins.print = _capturing_print
        _print_installed = True
