"""Records of the orchestration layer: deployments, schedules, leases, workers,
limits, store status, run statistics. Re-exported by `legato.records` (imported on first use)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from legato.deadlines import Deadline
from legato.states import StateType


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Lease:
    """A named lease held by one holder until it expires: a singleton duty (leader
    election) or, later, a slot of a concurrency limit.

    ``generation`` grows by one each time the lease changes hands, so a duty
    can be fenced: work done under generation 3 is stale once it is 4.
    """

    name: str
    holder: str
    generation: int
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Notification:
    """A wake-up received on a channel (`Store.listen`)."""

    channel: str
    payload: str = ""


class CollisionStrategy(StrEnum):
    """What a deployment at its concurrency limit does with one more run."""

    ENQUEUE = "enqueue"  # the run waits in the queue until a slot frees up
    CANCEL_NEW = "cancel_new"  # the new run is cancelled at once


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a deployment runs: exactly one of ``cron``, ``interval`` (seconds) or
    ``rrule``, read in ``timezone``. An interval counts from ``anchor``."""

    cron: str | None = None
    interval: float | None = None
    rrule: str | None = None
    timezone: str = "UTC"
    anchor: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"timezone": self.timezone}
        if self.cron is not None:
            data["cron"] = self.cron
        if self.interval is not None:
            data["interval"] = self.interval
        if self.rrule is not None:
            data["rrule"] = self.rrule
        if self.anchor is not None:
            data["anchor"] = self.anchor.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        anchor = data.get("anchor")
        return cls(
            cron=data.get("cron"),
            interval=data.get("interval"),
            rrule=data.get("rrule"),
            timezone=data.get("timezone", "UTC"),
            anchor=None if anchor is None else datetime.fromisoformat(anchor),
        )


@dataclass(frozen=True, slots=True)
class Deployment:
    """A named, stored recipe for running a flow: where its code is, with which
    parameters, on which schedules, through which work queue."""

    name: str
    flow_name: str
    entrypoint: str
    id: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()
    work_queue: str = "default"
    priority: int = 0
    tags: tuple[str, ...] = ()
    concurrency_limit: int | None = None
    collision_strategy: CollisionStrategy = CollisionStrategy.ENQUEUE
    description: str | None = None
    paused: bool = False
    catchup: bool = False
    created: datetime = field(default_factory=utcnow)
    updated: datetime = field(default_factory=utcnow)
    # The scheduler's watermark: every slot up to here has its run.
    scheduled_until: datetime | None = None
    # The flow's own timeout and retries, read when deployed: a worker enforces
    # them even on a run whose process cannot stop by itself.
    timeout_seconds: float | None = None
    retries: int = 0
    # The flow's parameters as a JSON Schema, recorded by a deploy that loaded its
    # code; what the server checks a triggered run against (it never imports the
    # flow). None: made through the API without one, so the worker checks.
    parameter_schema: dict[str, Any] | None = None
    # legato.Deadline: given to each run the deployment queues (the leader's sweeps).
    deadlines: tuple[Deadline, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker process as it last reported itself (`legato workers`)."""

    id: str
    name: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started: datetime
    heartbeat_at: datetime
    running: int = 0
    stopped_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What `legato db status` shows. ``url`` has any password masked."""

    backend: str
    url: str
    schema_version: int
    latest_version: int
    size_bytes: int
    row_counts: dict[str, int]
    # Migrations this process applied when it opened the store ([] when current).
    migrated_on_open: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune deleted (or, for a dry run, would delete)."""

    flow_runs: int = 0
    task_runs: int = 0
    logs: int = 0


@dataclass(frozen=True, slots=True)
class StoredVariable:
    """A named variable as the store keeps it: ``value`` is its JSON text (the
    client decodes it; the store never looks inside)."""

    name: str
    value: str
    tags: tuple[str, ...]
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class Artifact:
    """Something a run published for people to read: ``type`` is ``markdown``,
    ``table`` or ``link`` and ``data`` its JSON text (the markdown string, the
    table, or ``{"link": ..., "link_text": ...}``). ``flow_run_id`` and
    ``task_run_id`` are None for one created outside any run."""

    id: str
    key: str | None
    type: str
    data: str
    description: str | None
    flow_run_id: str | None
    task_run_id: str | None
    created: datetime


@dataclass(frozen=True, slots=True)
class Limit:
    """A named global limit that task tags refer to.

    Without ``per_seconds``: at most ``slots`` tasks holding it at once, in all
    processes on all machines (a concurrency limit). With it: at most ``slots``
    task starts in any ``per_seconds`` window (a rate limit). ``active`` is the
    number of slots taken when it was read.
    """

    name: str
    slots: int
    per_seconds: float | None = None
    active: int = 0


@dataclass(frozen=True, slots=True)
class RunCount:
    """How many top-level flow runs created in one time bucket are in ``state``."""

    bucket_start: datetime  # tz-aware UTC
    state: StateType
    count: int


@dataclass(frozen=True, slots=True)
class FlowDurationStats:
    """Durations of one flow's finished top-level runs (`Store.flow_duration_stats`)."""

    flow_name: str
    runs: int
    failed: int  # ended in state failed or crashed
    mean_seconds: float
    max_seconds: float


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """A keyed transaction that committed (`legato.transactions.transaction(key=...)`):
    ``payload`` holds what later runs need (the results of its tasks and the values
    set in it), encoded by the engine; the store never looks inside."""

    key: str
    flow_run_id: str
    committed_at: datetime
    payload: bytes
