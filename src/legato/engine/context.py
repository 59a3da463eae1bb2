"""Run contexts: what the engine knows about the flow run and task run in progress.

Kept in context variables so that task calls find their flow run on any
thread the task runner uses (contexts are copied into worker threads).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from legato.errors import CancelledRun, RunStopped
from legato.records import FlowRun, LogRecord, TaskRun

if TYPE_CHECKING:
    from legato.engine.observer import RunObserver
    from legato.engine.transactions import Transaction
    from legato.flows import Flow
    from legato.store.base import Store
    from legato.task_runners import ThreadPoolTaskRunner


class CallScope:
    """Hands out call keys: ``name[n]`` for the n-th call of ``name`` in this scope.

    A flow run is one scope; a task run that calls tasks is a nested scope
    whose keys are prefixed with its own call key; an asyncio task created
    inside a flow run is a branch scope named after its coroutine and that
    coroutine's arguments, ``branch[1]/`` (see engine/branches.py), so that
    concurrent branches get the same keys whatever order they run in.
    """

    __slots__ = ("_branches", "_counters", "_lock", "prefix")

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._counters: dict[str, int] = {}
        self._branches: dict[str, int] | None = None
        self._lock = threading.Lock()

    def next_key(self, name: str) -> str:
        with self._lock:
            n = self._counters.get(name, 0)
            self._counters[name] = n + 1
        return f"{self.prefix}{name}[{n}]"

    def branch(self, label: str) -> CallScope:
        """The scope of a concurrent branch started from this one, named ``label``
        (its coroutine and arguments); a label seen before gets ``#n`` appended."""
        with self._lock:
            if self._branches is None:
                self._branches = {}
            n = self._branches.get(label, 0)
            self._branches[label] = n + 1
        return CallScope(prefix=f"{self.prefix}{label}{f'#{n}' if n else ''}/")


class FlowRunContext:
    """Everything the engine tracks while one flow run executes in this process."""

    __slots__ = (
        "cancel_requested",
        "changed_args",
        "deadline",
        "explicit_keys",
        "flow",
        "held_slots",
        "in_flight",
        "llm_spend",
        "lock",
        "log_buffer",
        "log_prints",
        "lost",
        "observer",
        "outstanding",
        "owner_token",
        "pause_requested",
        "recorded",
        "replayed",
        "result_sources",
        "run",
        "runner",
        "scope",
        "stopped",
        "store",
        "transactions",
    )

    def __init__(
        self,
        *,
        run: FlowRun,
        flow: Flow,
        store: Store,
        owner_token: str,
        recorded: dict[str, TaskRun] | None,
        observer: RunObserver | None,
    ) -> None:
        self.run = run
        self.flow = flow
        self.store = store
        self.owner_token = owner_token
        # Task runs recorded by earlier executions, by call key; None on a fresh run
        # (then no lookups are needed at all).
        self.recorded = recorded
        self.observer = observer
        self.scope = CallScope()
        self.lock = threading.Lock()
        self.log_buffer: list[LogRecord] = []
        # Task runs started but not finished, by call key, with whether the monitor
        # already wrote their RUNNING record.
        self.in_flight: dict[str, list[Any]] = {}
        # id(value) -> (value, task_run_id) for results of direct task calls, so a
        # later call receiving that object records a data dependency.
        self.result_sources: dict[int, tuple[Any, str]] = {}
        self.outstanding: list[Any] = []  # futures submitted and not yet awaited
        self.runner: ThreadPoolTaskRunner | None = None
        self.transactions: list[Transaction] = []
        self.cancel_requested = False
        # Set by the monitor when `legato suspend` asked the run to pause: the flow
        # body pauses at its next task call (suspend_if_requested).
        self.pause_requested = False
        # Keys chosen by the user (call_key=, pause key=): each may be used once.
        self.explicit_keys: set[tuple[str, str]] = set()
        self.stopped = False  # set when the run ended; late task threads must stop
        # Set when another process took the run over (or it was marked crashed or
        # cancelled by another actor): this process must stop and write nothing.
        self.lost = False
        # monotonic time at which the flow's timeout fires (sync tasks called from
        # async code wait for it), None without a timeout.
        self.deadline: float | None = None
        # What replay does with a completed call whose arguments changed
        # ("error", "replay" or "rerun"; see engine/fingerprint.py).
        self.changed_args = "error"
        self.held_slots: set[str] = set()  # holders of global limit slots, renewed by heartbeat
        self.replayed = 0  # task calls this attempt answered from the journal (metrics)
        # Model spend seen by this execution (legato.ai.budget), made on the first model call.
        self.llm_spend: Any = None
        self.log_prints = flow.log_prints

    @property
    def run_id(self) -> str:
        return self.run.id

    def claim_key(self, kind: str, key: str, what: str) -> None:
        """Reserve a user-chosen key of one kind ("call", "pause"); a second use in the
        same run is an error. ``what`` names it in the message."""
        from legato.errors import ConfigurationError

        with self.lock:
            if (kind, key) in self.explicit_keys:
                raise ConfigurationError(
                    f"{what} is used twice in flow run {self.run.id}; give each call its "
                    f"own key, or replay could not tell them apart"
                )
            self.explicit_keys.add((kind, key))

    def check_cancelled(self) -> None:
        """At a task boundary: stop if the run was lost, cancelled or has ended."""
        if self.lost:
            raise RunStopped(self.run.id, lost=True)
        if self.cancel_requested:
            raise CancelledRun(self.run.id)
        if self.stopped:
            raise RunStopped(self.run.id, lost=False)

    def suspend_if_requested(self) -> None:
        """At a task call in the flow body: pause the run when a suspension was
        requested (`legato suspend`); it resumes with `legato resume`, replaying the
        tasks that completed."""
        if not self.pause_requested:
            return
        import os

        from legato.errors import PauseSignal
        from legato.records import PauseInfo

        self.pause_requested = False
        key = f"suspended-{os.urandom(6).hex()}"
        raise PauseSignal(key, PauseInfo(key=key))

    def take_logs(self) -> list[LogRecord]:
        if not self.log_buffer:
            return []
        with self.lock:
            logs, self.log_buffer = self.log_buffer, []
        return logs

    def put_back_logs(self, logs: list[LogRecord]) -> None:
        """Return lines taken for a write that failed: they go out with the next one."""
        with self.lock:
            self.log_buffer[:0] = logs

    def add_log(self, record: LogRecord) -> None:
        with self.lock:
            self.log_buffer.append(record)
        if self.observer is not None:
            from legato.engine.observer import notify

            notify(self.observer.log, record)


class TaskRunContext:
    """The task call executing on this thread (or in this asyncio task)."""

    __slots__ = (
        "_scope",
        "attempt",
        "call",
        "call_key",
        "flow_ctx",
        "log_prints",
        "tags",
        "task",
        "task_run_id",
    )

    def __init__(
        self,
        *,
        flow_ctx: FlowRunContext,
        task: Any,
        task_run_id: str,
        call_key: str,
        attempt: int,
        tags: tuple[str, ...] | None = None,
        call: Any = None,
    ) -> None:
        self.flow_ctx = flow_ctx
        self.task = task
        # The engine's call (its arguments bind on demand: `runtime.task_run.parameters`).
        self.call = call
        # The call's tags: the task's own plus those of `with tags(...)` blocks.
        self.tags: tuple[str, ...] = task.tags if tags is None else tags
        self.task_run_id = task_run_id
        self.call_key = call_key
        self.attempt = attempt
        self._scope: CallScope | None = None
        self.log_prints: bool = task.log_prints if task.log_prints is not None else False

    @property
    def scope(self) -> CallScope:
        """Call keys for tasks called inside this task (made on first use)."""
        if self._scope is None:
            self._scope = CallScope(prefix=f"{self.call_key}/")
        return self._scope

    @property
    def idempotency_key(self) -> str:
        return f"{self.flow_ctx.run.id}/{self.call_key}"


FLOW_CONTEXT: ContextVar[FlowRunContext | None] = ContextVar("legato_flow_run", default=None)
TASK_CONTEXT: ContextVar[TaskRunContext | None] = ContextVar("legato_task_run", default=None)
# The flow run being named, while a callable ``flow_run_name`` runs (before the run
# starts): ``legato.runtime.flow_run`` reads it first, as Prefect's callables expect.
NAMING_RUN: ContextVar[FlowRun | None] = ContextVar("legato_naming_run", default=None)


class Branch:
    """The call scope of an asyncio task created inside a flow run (or inside a
    task of one), valid while that flow run and task are the current ones."""

    __slots__ = ("flow_ctx", "scope", "task_ctx")

    def __init__(
        self, scope: CallScope, flow_ctx: FlowRunContext, task_ctx: TaskRunContext | None
    ) -> None:
        self.scope = scope
        self.flow_ctx = flow_ctx
        self.task_ctx = task_ctx


BRANCH: ContextVar[Branch | None] = ContextVar("legato_branch", default=None)


def current_scope(flow_ctx: FlowRunContext) -> CallScope:
    """Where the next call key in ``flow_ctx`` comes from, here: the innermost of the
    running task's scope, the asyncio branch's scope, and the flow run's."""
    task_ctx = TASK_CONTEXT.get()
    if task_ctx is not None and task_ctx.flow_ctx is not flow_ctx:
        task_ctx = None
    branch = BRANCH.get()
    if branch is not None and branch.flow_ctx is flow_ctx and branch.task_ctx is task_ctx:
        return branch.scope
    return task_ctx.scope if task_ctx is not None else flow_ctx.scope


@dataclass(frozen=True)
class RunContext:
    """What `legato.get_run_context()` returns.

    ``idempotency_key`` is the same for a given task call across its attempts
    and across resumes of the run, so a task can deduplicate its side effects.
    Outside a task, ``task_run_id`` is None and ``idempotency_key`` is the flow
    run id. As in Prefect, ``flow`` is the running `Flow`, and inside a task
    ``task`` is the `Task` and ``task_run`` its record as it stands (running).
    """

    flow_run_id: str
    flow_name: str
    flow_run: FlowRun
    parameters: dict[str, Any]
    task_run_id: str | None = None
    task_name: str | None = None
    call_key: str | None = None
    attempt: int = 1
    idempotency_key: str = ""
    flow: Flow[Any, Any] | None = None
    task: Any = None
    task_run: TaskRun | None = None


def get_run_context() -> RunContext:
    """The current flow run and task run; raises outside a flow run."""
    from legato.errors import TaskCallError

    flow_ctx = FLOW_CONTEXT.get()
    if flow_ctx is None:
        raise TaskCallError(
            "get_run_context() was called outside a flow run; call it from inside a "
            "@flow or @task function"
        )
    task_ctx = TASK_CONTEXT.get()
    run = flow_ctx.run
    if task_ctx is not None and task_ctx.flow_ctx is flow_ctx:
        return RunContext(
            flow_run_id=run.id,
            flow_name=run.flow_name,
            flow_run=run,
            parameters=run.parameters,
            task_run_id=task_ctx.task_run_id,
            task_name=task_ctx.task.name,
            call_key=task_ctx.call_key,
            attempt=task_ctx.attempt,
            idempotency_key=task_ctx.idempotency_key,
            flow=flow_ctx.flow,
            task=task_ctx.task,
            task_run=task_ctx.call.running_record() if task_ctx.call is not None else None,
        )
    return RunContext(
        flow_run_id=run.id,
        flow_name=run.flow_name,
        flow_run=run,
        parameters=run.parameters,
        attempt=run.attempts,
        idempotency_key=run.id,
        flow=flow_ctx.flow,
    )
