"""Domain records the store reads and writes.

Frozen dataclasses, one per thing legato keeps. Times are timezone-aware
UTC datetimes. The store speaks these records, never rows or bytes, except
for result and parameter payloads, which travel as opaque ``bytes`` beside
them because only the engine knows how to decode them.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from legato import _clock
from legato.states import StateType

#: the engine's one clock, virtual under legato.testing.virtual_clock (legato._clock)
utcnow = _clock.now

_T = TypeVar("_T")


def _fast_init(cls: type[_T]) -> type[_T]:
    """Give a frozen slots dataclass an ``__init__`` that fills its slots directly.

    The generated frozen ``__init__`` sets each field through
    ``object.__setattr__``, about 0.2 µs a field; the engine builds a record
    per task call, where that came to 5 µs. Slot descriptors set the same
    fields without the detour. Behaviour is otherwise the dataclass's own:
    same parameters, defaults and default factories, still frozen afterwards.
    """
    params = []
    body = []
    namespace: dict[str, Any] = {"MISSING": MISSING}
    for f in fields(cls):  # type: ignore[arg-type]
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is not MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
            body.append(f"    _set_{f.name}(self, {f.name})")
        elif f.default_factory is not MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=MISSING")
            body.append(
                f"    _set_{f.name}(self, _factory_{f.name}() if {f.name} is MISSING else {f.name})"
            )
        else:
            params.append(f.name)
            body.append(f"    _set_{f.name}(self, {f.name})")
    required = [p for p in params if "=" not in p]
    optional = [p for p in params if "=" in p]
    # Setters and defaults become closure variables (fast lookups), not globals.
    free = [name for name in namespace if name != "MISSING"]
    source = (
        f"def _make({', '.join(free)}):\n"
        f"  def __init__(self, {', '.join(required + optional)}):\n"
        + "\n".join("  " + line for line in body)
        + "\n  return __init__"
    )
    exec(source, namespace)
    init = namespace["_make"](*(namespace[name] for name in free))
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What went wrong: the exception's type, its message and the traceback text."""

    type: str
    message: str
    traceback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ErrorInfo | None:
        if not data:
            return None
        return cls(
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            traceback=data.get("traceback"),
        )


@dataclass(frozen=True, slots=True)
class Dependency:
    """An edge into a task run: its input came from (or waited for) another task run."""

    upstream_id: str
    kind: str  # "data" or "wait_for"
    parameter: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"upstream_id": self.upstream_id, "kind": self.kind, "parameter": self.parameter}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dependency:
        return cls(
            upstream_id=str(data["upstream_id"]),
            kind=str(data.get("kind", "data")),
            parameter=data.get("parameter"),
        )


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """One attempt of a task run that took more than one: when it ran and how it ended."""

    attempt: int
    start_time: datetime | None
    end_time: datetime | None
    state: str  # "failed" for an attempt that was retried, else the final state
    error: ErrorInfo | None = None  # type and message only (the traceback is the run's)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "start_time": None if self.start_time is None else self.start_time.isoformat(),
            "end_time": None if self.end_time is None else self.end_time.isoformat(),
            "state": self.state,
            "error": None
            if self.error is None
            else {"type": self.error.type, "message": self.error.message},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttemptInfo:
        start, end = data.get("start_time"), data.get("end_time")
        return cls(
            attempt=int(data.get("attempt", 0)),
            start_time=None if start is None else datetime.fromisoformat(start),
            end_time=None if end is None else datetime.fromisoformat(end),
            state=str(data.get("state", "")),
            error=ErrorInfo.from_dict(data.get("error")),
        )


@dataclass(frozen=True, slots=True)
class RunOwner:
    """The process executing a run: where it lives and the token that fences its writes."""

    token: str
    host: str
    pid: int
    pid_started: float | None = None  # process start time, guards against pid reuse


@dataclass(frozen=True, slots=True)
class PauseInfo:
    """Why and how a run is paused."""

    key: str
    input_model: str | None = None  # "module:QualName" of the RunInput subclass
    input_schema: dict[str, Any] | None = None  # its JSON schema, for forms and docs
    timeout_at: datetime | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class FlowRun:
    """One execution of a flow, across all its attempts and resumes."""

    id: str
    flow_name: str
    name: str
    state: StateType
    parameters: dict[str, Any] = field(default_factory=dict)  # JSON view
    entrypoint: str | None = None  # "path/file.py:fn" or "pkg.mod:fn", for resume
    flow_version: str | None = None
    tags: tuple[str, ...] = ()
    parent_run_id: str | None = None
    parent_call_key: str | None = None
    created: datetime = field(default_factory=utcnow)
    start_time: datetime | None = None
    end_time: datetime | None = None
    state_message: str | None = None
    error: ErrorInfo | None = None
    attempts: int = 0
    owner: RunOwner | None = None
    heartbeat_at: datetime | None = None
    cancel_requested: bool = False
    pause: PauseInfo | None = None
    result_serializer: str | None = None
    has_result: bool = False
    # Queued for workers: the queue that picks it up, its priority (higher
    # first) and when it is due. A run started in-process has no queue.
    work_queue: str | None = None
    priority: int = 0
    scheduled_time: datetime | None = None
    # Runs of a deployment carry its name; a schedule slot's run also carries an
    # idempotency key, unique in the store, so that no slot is ever run twice.
    deployment: str | None = None
    idempotency_key: str | None = None
    # Runs sharing a concurrency key (a deployment's, a backfill's) run at most
    # concurrency_limit at a time: workers claim no more of them.
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    # Flow retries taken since the run last started from a final state: counted
    # in the store, so a takeover by another process never renews the budget.
    retries_used: int = 0
    # The run's trace (W3C traceparent of its `flow NAME` span, see legato.tracing):
    # every attempt, in whichever process, continues it. None when tracing was off.
    trace_context: str | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class TaskRun:
    """One task call inside a flow run, identified by its call key."""

    id: str
    flow_run_id: str
    call_key: str
    task_name: str
    name: str
    state: StateType
    attempts: int = 0
    cached: bool = False
    rolled_back: bool = False
    start_time: datetime | None = None
    end_time: datetime | None = None
    error: ErrorInfo | None = None
    inputs: dict[str, str] | None = None  # shortened reprs, kept for failed tasks
    dependencies: tuple[Dependency, ...] = ()
    parent_task_run_id: str | None = None
    tags: tuple[str, ...] = ()
    cache_key: str | None = None
    cache_expires_at: datetime | None = None
    result_serializer: str | None = None
    has_result: bool = False
    # Set when the task run took more than one attempt (across resumes too).
    attempt_log: tuple[AttemptInfo, ...] = ()
    # The call's arguments in canonical form (engine/fingerprint.py): replay
    # compares it with the call made at the same key on resume.
    args_fingerprint: str | None = None
    # Where a remote task runner ran the body ("host (pid N)"): None when the body ran
    # in the flow run's own process.
    host: str | None = None

    @property
    def idempotency_key(self) -> str:
        return f"{self.flow_run_id}/{self.call_key}"

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


class TaskCompletion(NamedTuple):
    """A task call that completed with a result, as the engine's short path for a
    plain call records it (`Store.record_task_completion`): the fields of its
    `TaskRun` that are not at their defaults. A named tuple, not a dataclass,
    because it is built once per call on the hottest path: 0.3 µs against 2 µs
    for the `TaskRun`."""

    task_run_id: str
    flow_run_id: str
    call_key: str
    task_name: str
    attempts: int
    start_time: datetime
    end_time: datetime
    dependencies: tuple[Dependency, ...]
    parent_task_run_id: str | None
    tags: tuple[str, ...]
    args_fingerprint: str | None

    def task_run(self, result_serializer: str) -> TaskRun:
        """The completed record this stands for (its name is its call key)."""
        return TaskRun(
            id=self.task_run_id,
            flow_run_id=self.flow_run_id,
            call_key=self.call_key,
            task_name=self.task_name,
            name=self.call_key,
            state=StateType.COMPLETED,
            attempts=self.attempts,
            start_time=self.start_time,
            end_time=self.end_time,
            dependencies=self.dependencies,
            parent_task_run_id=self.parent_task_run_id,
            tags=self.tags,
            result_serializer=result_serializer,
            has_result=True,
            args_fingerprint=self.args_fingerprint,
        )


@_fast_init
@dataclass(frozen=True, slots=True)
class StoredResult:
    """A result payload and the serializer that wrote it."""

    serializer: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class CachedResult:
    """A cache hit: the task run that produced the value, and the value."""

    cache_key: str
    task_run_id: str
    result: StoredResult
    expires_at: datetime | None


@_fast_init
@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log line of a flow run (and of a task run when ``task_run_id`` is set)."""

    flow_run_id: str
    timestamp: datetime
    level: int
    message: str
    logger: str = "legato"
    task_run_id: str | None = None
    id: int | None = None  # assigned by the store, increasing per store
    # The span the line was written in (hex ids), when traces were on (legato.tracing).
    trace_id: str | None = None
    span_id: str | None = None


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """What a heartbeat learns: whether we still own the run, whether to stop, and
    whether to pause at the next task boundary (`legato suspend`)."""

    still_owner: bool
    cancel_requested: bool
    pause_requested: bool = False


# Records of the orchestration layer (deployments, schedules, leases, workers,
# limits, store status, run statistics) live in a module of their own, imported on first use:
# `import legato` builds only the run records above (each frozen dataclass
# costs about a millisecond to create).
_ORCHESTRATION = frozenset(
    {
        "Artifact",
        "CollisionStrategy",
        "Deployment",
        "FlowDurationStats",
        "Lease",
        "Limit",
        "Notification",
        "PruneResult",
        "RunCount",
        "Schedule",
        "StoreStatus",
        "StoredVariable",
        "TransactionRecord",
        "WorkerInfo",
    }
)

if TYPE_CHECKING:  # the same names, for type checkers (re-exported explicitly)
    from legato._orchestration_records import (
        Artifact as Artifact,
    )
    from legato._orchestration_records import (
        CollisionStrategy as CollisionStrategy,
    )
    from legato._orchestration_records import (
        Deployment as Deployment,
    )
    from legato._orchestration_records import (
        FlowDurationStats as FlowDurationStats,
    )
    from legato._orchestration_records import (
        Lease as Lease,
    )
    from legato._orchestration_records import (
        Limit as Limit,
    )
    from legato._orchestration_records import (
        Notification as Notification,
    )
    from legato._orchestration_records import (
        PruneResult as PruneResult,
    )
    from legato._orchestration_records import (
        RunCount as RunCount,
    )
    from legato._orchestration_records import (
        Schedule as Schedule,
    )
    from legato._orchestration_records import (
        StoredVariable as StoredVariable,
    )
    from legato._orchestration_records import (
        StoreStatus as StoreStatus,
    )
    from legato._orchestration_records import (
        TransactionRecord as TransactionRecord,
    )
    from legato._orchestration_records import (
        WorkerInfo as WorkerInfo,
    )


def __getattr__(name: str) -> Any:
    if name in _ORCHESTRATION:
        from legato import _orchestration_records

        return getattr(_orchestration_records, name)
    raise AttributeError(f"module 'legato.records' has no attribute {name!r}")
