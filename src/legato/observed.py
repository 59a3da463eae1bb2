"""Observe-only: record existing code and commands as flow runs, never replay them.

- `observe` records a block of Python as a flow run (no resume, no replay);
- `observe_task` records each call of a function as a task run of the observed run;
- `wrap_command` runs any command as a flow run (``legato wrap``): its output as the
  run's logs, its exit code as the state, retries, a timeout, and its whole process
  group stopped on cancel, timeout and interrupt.

Observed runs carry the tag ``observed``: ``legato resume`` refuses them, since
there is no flow function to call again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar

from legato._clock import now as utcnow
from legato.errors import CommandFailedError, FlowTimeoutError, RunStateError, StoreError
from legato.flows import flow
from legato.records import LogRecord

OBSERVED_TAG = "observed"

F = TypeVar("F", bound=Callable[..., Any])

# A running command is checked this often for cancellation and its timeout.
_POLL_SECONDS = 0.1

# Set by `legato wrap`'s SIGINT/SIGTERM handler: the running command's group is
# stopped and KeyboardInterrupt raised at a point where no child can be left behind.
INTERRUPTED = threading.Event()


def _observed_flow(name: str, tags: Iterable[str], fn: Callable[..., Any], **options: Any) -> Any:
    from legato.flows import Flow

    return Flow(fn, name=name, tags=(*tags, OBSERVED_TAG), persist_result=False, **options)


def _block() -> None:
    """The stand-in body of an observed block (never called)."""


def is_observed(tags: Iterable[str]) -> bool:
    return OBSERVED_TAG in tags


@contextlib.contextmanager
def observe(name: str, *, tags: Iterable[str] = ()) -> Iterator[str]:
    """Record the ``with`` block as a flow run named ``name``; yields the run id.

    Nothing is replayed or resumed: the block runs once, as written. An exception
    fails the run and propagates unchanged; a process that dies leaves the run
    crashed (as any run whose heartbeat stops). Tasks and `observe_task` functions
    called inside are recorded as its task runs; its logs are the run's logs.
    """
    from legato.engine.calls import START_STATES
    from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT
    from legato.engine.flow_engine import FlowExecution, create_flow_run
    from legato.store import get_default_store

    store = get_default_store()
    flow = _observed_flow(name, tags, _block)
    run = create_flow_run(flow, store, {})
    execution = FlowExecution(flow, store, run, {}, fresh=True)
    ctx = execution._start(START_STATES)
    if ctx is None:  # pragma: no cover - a fresh run is never cancelled before it starts
        raise RunStateError(f"observed run {run.id} was cancelled before it started")
    flow_token = FLOW_CONTEXT.set(ctx)
    task_token = TASK_CONTEXT.set(None)
    outcome: BaseException | None = None
    try:
        yield run.id
    except BaseException as exc:
        outcome = exc
        raise
    finally:
        TASK_CONTEXT.reset(task_token)
        FLOW_CONTEXT.reset(flow_token)
        try:
            execution._conclude(ctx, None, outcome)
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit: recorded as crashed, then re-raised by the
            # engine; the `raise` above propagates it once.
            if exc is not outcome:
                raise


def _in_observed_run() -> bool:
    from legato.engine.context import FLOW_CONTEXT, TASK_CONTEXT

    ctx = FLOW_CONTEXT.get()
    return ctx is not None and TASK_CONTEXT.get() is None and is_observed(ctx.run.tags)


def observe_task(fn: F) -> F:
    """Record each call of ``fn`` made inside an observed run as a task run (keyed
    like any task call, never replayed or cached); elsewhere ``fn`` is just called.
    Use as a decorator or call it on an existing function."""
    from legato.tasks import Task

    recorded: Task[Any, Any] = Task(fn, persist_result=False)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if _in_observed_run():
            return recorded(*args, **kwargs)
        return fn(*args, **kwargs)

    return call  # type: ignore[return-value]


def run_script(path: str, args: Iterable[str] = ()) -> str:
    """Run the script at ``path`` as ``__main__`` (``sys.argv`` is the path, then
    ``args``) inside an observed run named after it; returns the run's id. The
    script's exceptions propagate; ``sys.exit`` with a code other than 0 fails the
    run with CommandFailedError."""
    import runpy

    name = os.path.splitext(os.path.basename(path))[0]
    saved = sys.argv
    sys.argv = [path, *args]
    try:
        with observe(name) as run_id:
            try:
                runpy.run_path(path, run_name="__main__")
            except SystemExit as exc:
                if exc.code not in (0, None):
                    code = exc.code if isinstance(exc.code, int) else 1
                    raise CommandFailedError([path, *args], code) from None
    finally:
        sys.argv = saved
    return run_id


def has_flow_decorator(path: str) -> bool:
    """Whether the file at ``path`` decorates a function with ``flow`` (``@flow``,
    ``@flow(...)``, ``@legato.flow``...); read, not executed."""
    import ast

    tree = ast.parse(open(path, encoding="utf-8").read(), path)  # noqa: SIM115
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Name) and target.id == "flow":
                    return True
                if isinstance(target, ast.Attribute) and target.attr == "flow":
                    return True
    return False


# --- wrapped commands ----------------------------------------------------------------


def stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the command's whole process group, then SIGKILL it after ``grace``
    seconds (or at once when the command itself has exited by then)."""
    pgid = proc.pid  # start_new_session: the command leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait()


def exit_code_of(returncode: int) -> int:
    """A shell's exit code: 128 + N for a command killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


class CommandRun:
    """One execution of a command: output passed through and kept as log lines."""

    def __init__(self, argv: list[str], *, grace: float) -> None:
        self.argv = argv
        self.grace = grace
        self.logs: list[tuple[float, str, str]] = []  # (time, stream, line) when unrecorded

    def run(
        self,
        *,
        timeout: float | None,
        name: str,
        emit: Callable[[str, str], None],
        cancelled: Callable[[], bool] = lambda: False,
    ) -> int | None:
        """The command's exit code, or None when it was cancelled. Raises
        FlowTimeoutError on timeout; an interrupt stops the group and propagates."""
        if INTERRUPTED.is_set():
            raise KeyboardInterrupt
        proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        pumps = [
            _pump(proc.stdout, "stdout", emit),
            _pump(proc.stderr, "stderr", emit),
        ]
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                if INTERRUPTED.is_set():
                    stop_group(proc, self.grace)
                    raise KeyboardInterrupt
                try:
                    proc.wait(_POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if cancelled():
                    stop_group(proc, self.grace)
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    stop_group(proc, self.grace)
                    raise FlowTimeoutError(name, timeout or 0.0)
        except BaseException:
            if proc.returncode is None:
                stop_group(proc, self.grace)
            raise
        finally:
            for pump in pumps:
                # A background child may hold a pipe open: don't wait for it forever.
                pump.join(1.0)
        return exit_code_of(proc.returncode)


def _pump(
    pipe: IO[bytes] | None, stream: str, emit: Callable[[str, str], None]
) -> threading.Thread:
    target = sys.stdout if stream == "stdout" else sys.stderr

    def work() -> None:
        if pipe is None:
            return
        for raw in iter(pipe.readline, b""):
            out = getattr(target, "buffer", None)
            if out is not None:
                out.write(raw)
            else:
                target.write(raw.decode(errors="replace"))
            target.flush()
            emit(stream, raw.decode(errors="replace").rstrip("\r\n"))
        pipe.close()

    thread = threading.Thread(target=work, name=f"legato-wrap-{stream}", daemon=True)
    thread.start()
    return thread


def _log(run_id: str, stream: str, line: str) -> LogRecord:
    return LogRecord(
        flow_run_id=run_id,
        timestamp=utcnow(),
        level=logging.INFO if stream == "stdout" else logging.WARNING,
        message=line,
        logger=f"legato.wrap.{stream}",
    )


def wrap_command(
    argv: list[str],
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    timeout: float | None = None,
    tags: Iterable[str] = (),
    grace: float | None = None,
) -> int:
    """Run ``argv`` as a recorded flow run; returns the exit code for the wrapper.

    If the store cannot be opened or reached, the command runs all the same and its
    record is spooled under the legato home (`legato.engine.spool`), uploaded by
    the next wrapped command that reaches the store.
    """
    from legato.engine import spool
    from legato.settings import wrap_grace_seconds

    if not argv:
        from legato.errors import ConfigurationError

        raise ConfigurationError("no command to wrap; give it after `--`: legato wrap -- CMD")
    grace = wrap_grace_seconds() if grace is None else grace
    name = name or os.path.basename(argv[0])
    tags = tuple(tags)
    try:
        from legato.store import get_default_store

        store = get_default_store()
        spool.upload(store)
    except StoreError as exc:
        sys.stderr.write(f"legato: the store is unreachable ({exc}); running unrecorded\n")
        return _run_spooled(argv, name, retries, retry_delay, timeout, tags, grace)
    return _run_recorded(argv, name, retries, retry_delay, timeout, tags, grace)


def _command_attempt(
    command: list[str], name: str, timeout: float | None, grace: float, last: dict[str, int]
) -> int:
    """One attempt of a wrapped command, inside its flow run: output to the run's logs,
    cancellation and the timeout stop its process group; a non-zero exit fails it."""
    from legato.engine.context import FLOW_CONTEXT
    from legato.errors import CancelledRun

    ctx = FLOW_CONTEXT.get()
    if ctx is None:  # pragma: no cover - the engine always sets it
        raise RunStateError("a wrapped command runs only inside its flow run")
    run_id = ctx.run.id
    ctx.add_log(_log(run_id, "stdout", f"running {subprocess.list2cmdline(command)}"))
    try:
        code = CommandRun(command, grace=grace).run(
            timeout=timeout,
            name=name,
            emit=lambda stream, line: ctx.add_log(_log(run_id, stream, line)),
            cancelled=lambda: ctx.cancel_requested or ctx.lost,
        )
    except FlowTimeoutError:
        last["code"] = exit_code_of(-signal.SIGTERM)
        raise
    if code is None:
        last["code"] = exit_code_of(-signal.SIGTERM)
        raise CancelledRun(run_id)
    last["code"] = code
    if code != 0:
        raise CommandFailedError(command, code)
    return code


def _run_recorded(
    argv: list[str],
    name: str,
    retries: int,
    retry_delay: float,
    timeout: float | None,
    tags: tuple[str, ...],
    grace: float,
) -> int:
    from legato.engine.calls import run_flow_with_observer
    from legato.store import get_default_store

    last: dict[str, int] = {}

    def command(command: list[str]) -> int:
        return _command_attempt(command, name, timeout, grace, last)

    flow = _observed_flow(name, tags, command, retries=retries, retry_delay_seconds=retry_delay)
    state = run_flow_with_observer(flow, {"command": argv}, None, get_default_store())
    if state.is_completed():
        return 0
    return last.get("code", 1)


# The flow of command deployments (`legato deploy --command`), which workers load by
# this entrypoint: each run executes its ``command`` parameter as `legato wrap` does.
COMMAND_ENTRYPOINT = "legato.observed:run_command"


@flow(name="command", tags=[OBSERVED_TAG], persist_result=False)
def run_command(command: list[str], timeout: float | None = None) -> int:
    from legato.settings import wrap_grace_seconds

    return _command_attempt(command, command[0], timeout, wrap_grace_seconds(), {})


def _run_spooled(
    argv: list[str],
    name: str,
    retries: int,
    retry_delay: float,
    timeout: float | None,
    tags: tuple[str, ...],
    grace: float,
) -> int:
    from legato.engine import spool

    record = spool.SpooledRun.begin(name, argv, (*tags, OBSERVED_TAG))
    code = 1
    try:
        for attempt in range(retries + 1):
            try:
                code = (
                    CommandRun(argv, grace=grace).run(
                        timeout=timeout, name=name, emit=record.add_line
                    )
                    or 0
                )
                message = None if code == 0 else str(CommandFailedError(argv, code))
            except FlowTimeoutError as exc:
                code, message = exit_code_of(-signal.SIGTERM), str(exc)
            if message is None:
                record.finish("COMPLETED", None)
                break
            if attempt == retries:
                record.finish("FAILED", message)
            else:
                record.add_line("stderr", f"attempt {attempt + 1} failed: {message}")
                time.sleep(retry_delay)
    except BaseException as exc:
        record.finish("CRASHED", f"interrupted by {type(exc).__name__}")
        raise
    finally:
        path = record.save()
        sys.stderr.write(f"legato: run spooled to {path}; uploaded by the next `legato wrap`\n")
    return code
