"""Running a task's function body in another process while the driver records.

The flow's process (the driver) keeps everything durable: call keys, replay,
caching, limits, retries, timeouts and the one task-run record. What travels
is only the body: `pack_body` pickles the function (once per task: `pack_function`),
its resolved arguments and
what the body's logger needs to know (checking each argument, so a value that
cannot travel is named); `run_body` runs in the other process and answers with
the value or the exception, the log lines written meanwhile, where it ran and
timings; a value too large to send back is written to result storage and only
its reference answers. `unpack_outcome` puts the log lines into the run's log
buffer (before the record that commits them), tells the task call where the
body ran and of a reference, and returns the value or raises the exception. Shared by
the remote runners (`legato.task_runners.remote`): processes, Dask, Ray.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any, cast

import cloudpickle

from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT, FlowRunContext, TaskRunContext
from legato.errors import RemoteTaskError, TaskArgumentNotPicklableError, TaskCallError
from legato.records import LogRecord, StoredResult


@dataclass(frozen=True, slots=True)
class BodyContext:
    """What a body's process knows of its call: enough to attribute its log lines."""

    flow_run_id: str
    flow_name: str
    task_name: str
    task_run_id: str
    call_key: str
    log_prints: bool
    runner: str  # the runner's class name, for messages
    # Where a pickled value larger than result_threshold bytes goes (a folder or an
    # fsspec URL); None: the value always travels back (persist_result=False).
    result_storage: str | None = None
    result_threshold: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """A body's answer: its value (pickled) or exception, its log lines, where and how long."""

    value: bytes | None  # the value, cloudpickled; None when it went to result storage
    reference: StoredResult | None  # where it went
    error: BaseException | None
    logs: list[LogRecord]
    host: str
    pid: int
    seconds: float


def pack_function(fn: Any, context: BodyContext) -> bytes:
    """The task's function as bytes, pickled once per task and runner (a function
    defined in a flow file or ``__main__`` travels by value, which is not cheap)."""
    try:
        return bytes(cloudpickle.dumps(fn))
    except Exception as exc:
        raise TaskArgumentNotPicklableError(
            context.task_name,
            context.call_key,
            "<the task's function>",
            type(fn).__qualname__,
            f"{type(exc).__name__}: {exc}",
        ) from exc


def pack_body(
    function: bytes,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    parameter_names: tuple[str, ...] | list[str],
    context: BodyContext,
) -> bytes:
    """The call as bytes (``function`` from `pack_function`); a value that cannot travel
    is named in a `TaskArgumentNotPicklableError`."""
    try:
        return bytes(cloudpickle.dumps((function, args, kwargs, context)))
    except Exception as exc:
        failure = exc
    named: list[tuple[str, Any]] = [
        (parameter_names[i] if i < len(parameter_names) else f"args[{i}]", value)
        for i, value in enumerate(args)
    ]
    named.extend(kwargs.items())
    for name, value in named:
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            raise TaskArgumentNotPicklableError(
                context.task_name,
                context.call_key,
                name,
                type(value).__qualname__,
                f"{type(exc).__name__}: {exc}",
            ) from exc
    raise TaskArgumentNotPicklableError(
        context.task_name,
        context.call_key,
        "<the arguments together>",
        "tuple",
        f"{type(failure).__name__}: {failure}",
    ) from failure


class _BodyRun:
    """Stands in for the flow run in a body's process: collects its log lines."""

    def __init__(self, context: BodyContext) -> None:
        self.id = context.flow_run_id
        self.flow_name = context.flow_name


class _BodyFlow:
    """What `get_run_logger()` and ``print`` capture need of a flow run; anything else
    (calling another task, for one) is not available in a body's process."""

    def __init__(self, context: BodyContext) -> None:
        self.run = _BodyRun(context)
        self.log_prints = context.log_prints
        self.runner = context.runner
        self.logs: list[LogRecord] = []

    def add_log(self, record: LogRecord) -> None:
        self.logs.append(record)

    def __getattr__(self, name: str) -> Any:
        raise TaskCallError(
            f"'{name}' of the flow run is not available in a {self.runner} process: "
            f"a task body there runs alone (no nested task calls, no store); call other "
            f"tasks from the flow instead"
        )


class _BodyTask:
    def __init__(self, flow: _BodyFlow, context: BodyContext) -> None:
        self.flow_ctx = flow
        self.call_key = context.call_key
        self.task_run_id = context.task_run_id
        self.log_prints = context.log_prints
        self.runner = context.runner

    def __getattr__(self, name: str) -> Any:
        raise TaskCallError(f"'{name}' of the task run is not available in a {self.runner} process")


def watch_driver(driver: Any) -> None:
    """In a pool process: exit when the flow's process is gone (killed, say), instead of
    lingering with half-done work that a resume will run again. ``driver`` is the read
    end of a pipe whose only write end the flow's process holds: it reads end-of-file
    once that process has died (a check of its pid would still see a zombie)."""
    import threading

    def watch() -> None:
        try:
            driver.recv()
        except (EOFError, OSError):
            os._exit(1)

    threading.Thread(target=watch, name="legato-driver-watch", daemon=True).start()


# Functions already unpickled in this process, by their bytes: successive calls of
# one task load it once.
_FUNCTIONS: dict[bytes, Any] = {}


def _function(function: bytes) -> Any:
    fn = _FUNCTIONS.get(function)
    if fn is None:
        if len(_FUNCTIONS) >= 256:
            _FUNCTIONS.clear()
        fn = _FUNCTIONS[function] = cloudpickle.loads(function)
    return fn


def run_body(payload: bytes) -> bytes:
    """Run a packed call here (a pool process) and answer with a packed `Outcome`."""
    function, args, kwargs, context = cloudpickle.loads(payload)
    fn = _function(function)
    flow = _BodyFlow(context)
    if context.log_prints:
        from legato.engine.logs import install_print_capture

        install_print_capture()
    flow_token = FLOW_CONTEXT.set(cast(FlowRunContext, flow))
    task_token = TASK_CONTEXT.set(cast(TaskRunContext, _BodyTask(flow, context)))
    started = time.perf_counter()
    value: Any = None
    error: BaseException | None = None
    trace = ""
    try:
        value = fn(*args, **kwargs)
        if hasattr(value, "__await__"):
            import asyncio

            value = asyncio.run(value)
    except BaseException as exc:
        error = exc
        trace = traceback.format_exc()
        exc.add_note(f"Traceback in {context.runner} process {os.getpid()}:\n{trace}")
    finally:
        TASK_CONTEXT.reset(task_token)
        FLOW_CONTEXT.reset(flow_token)
    seconds = time.perf_counter() - started
    host, pid = socket.gethostname(), os.getpid()
    data: bytes | None = None
    reference: StoredResult | None = None
    try:
        if error is None:
            data = bytes(cloudpickle.dumps(value))
            if context.result_storage is not None and len(data) > context.result_threshold:
                from legato.engine.results import write_reference

                name = f"{context.flow_run_id}/{context.task_run_id}.pickle"
                reference = write_reference(context.result_storage, name, data)
                data = None
        return bytes(
            cloudpickle.dumps(Outcome(data, reference, error, flow.logs, host, pid, seconds))
        )
    except Exception as exc:
        if error is not None:
            what = f"raised {type(error).__qualname__}: {error}, which cannot be pickled back"
        elif data is None and reference is None:
            what = (
                f"returned a {type(value).__qualname__}, which cannot be pickled back to the "
                f"flow's process ({type(exc).__name__}: {exc})"
            )
            trace = ""
        else:
            what = (
                f"returned a value that could not be written to result storage at "
                f"{context.result_storage} ({type(exc).__name__}: {exc}); check "
                f"LEGATO_RESULT_STORAGE"
            )
            trace = ""
        substitute = RemoteTaskError(context.task_name, what, trace)
        return bytes(
            cloudpickle.dumps(Outcome(None, None, substitute, flow.logs, host, pid, seconds))
        )


def unpack_outcome(packed: bytes, flow_ctx: FlowRunContext) -> Any:
    """Put a body's log lines into the run's buffer, in order; tell the task call where
    the body ran (and of a result kept by reference); its value, or raise."""
    outcome: Outcome = cloudpickle.loads(packed)
    for record in outcome.logs:
        flow_ctx.add_log(record)
    task_ctx = TASK_CONTEXT.get()
    if task_ctx is not None and task_ctx.call is not None:
        task_ctx.call.note_remote_answer(f"{outcome.host} (pid {outcome.pid})", outcome.reference)
    if outcome.error is not None:
        raise outcome.error
    if outcome.reference is not None:
        from legato.engine.results import deserialize

        what = "a remote task" if task_ctx is None else f"task run {task_ctx.call_key}"
        return deserialize(outcome.reference, what)
    return cloudpickle.loads(outcome.value) if outcome.value is not None else None
