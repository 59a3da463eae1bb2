"""The store contract: every domain operation legato asks of its state store.

A backend (SQLite, later PostgreSQL) implements this class in its own module
with its SQL beside it. The engine and the client talk only to this class.
Every method is safe to call from several threads at once, and several
processes may use one database at the same time.

Fencing: writes made on behalf of an executing run carry the owner token the
run was started with. When another process has since taken the run over
(it was marked crashed and resumed elsewhere), such writes raise
`RunOwnershipLost` and change nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato.records import (
    CachedResult,
    ErrorInfo,
    FlowRun,
    HeartbeatReply,
    LogRecord,
    PauseInfo,
    RunOwner,
    StoredResult,
    TaskCompletion,
    TaskRun,
    utcnow,
)
from legato.states import StateType
from legato.store.base_alerts import AlertOps
from legato.store.base_automations import AutomationOps
from legato.store.base_events import EventOps
from legato.store.base_llm import LLMStore
from legato.store.base_llm_stream import LLMStreamStore
from legato.store.base_metrics import MetricOps, PrometheusMetricOps
from legato.store.base_notifications import NotificationOps
from legato.store.base_suspend import SuspendOps
from legato.store.base_sweeps import SweepOps
from legato.store.base_webhooks import WebhookOps

if TYPE_CHECKING:  # loaded when first used, not by `import legato`
    from legato.records import (
        Artifact,
        Deployment,
        FlowDurationStats,
        Lease,
        Limit,
        PruneResult,
        RunCount,
        StoredVariable,
        StoreStatus,
        TransactionRecord,
        WorkerInfo,
    )
    from legato.store.notifications import ChangeListener


def artifact_from_row(row: Sequence[Any], created: datetime) -> Artifact:
    """An Artifact from the artifact columns (the backends' shared mapping); each
    backend converts its own ``created`` column."""
    from legato.records import Artifact

    return Artifact(
        id=row[0],
        key=row[1],
        type=row[2],
        data=row[3],
        description=row[4],
        flow_run_id=row[5],
        task_run_id=row[6],
        created=created,
    )


def queued_due_time(run: FlowRun) -> datetime | None:
    """The scheduled_time a backend stores: a run queued for workers without one
    is due at its creation, so that every queued run sorts by one column."""
    if run.scheduled_time is not None or run.work_queue is None:
        return run.scheduled_time
    return run.created


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken as UTC (what the records promise)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def bucket_start(since: datetime, bucket_seconds: int, index: int) -> datetime:
    """The start of bucket ``index`` of `Store.flow_run_stats`, tz-aware UTC."""
    return as_utc(since) + timedelta(seconds=index * bucket_seconds)


def check_bucket_seconds(bucket_seconds: int) -> None:
    if bucket_seconds <= 0:
        raise ValueError(f"bucket_seconds must be positive, got {bucket_seconds}")


def run_counts(
    found: Iterable[Sequence[Any]],
    since: datetime,
    bucket_seconds: int,
    state_of: Callable[[str], StateType],
) -> list[RunCount]:
    """`RunCount` records from (bucket index, state, count) rows, on any backend."""
    from legato.records import RunCount

    return [
        RunCount(
            bucket_start=bucket_start(since, bucket_seconds, bucket),
            state=state_of(state),
            count=count,
        )
        for bucket, state, count in found
    ]


def duration_stats(found: Iterable[Sequence[Any]]) -> list[FlowDurationStats]:
    """`FlowDurationStats` from (flow, runs, failed, mean, max) rows, on any backend."""
    from legato.records import FlowDurationStats

    return [
        FlowDurationStats(
            flow_name=name, runs=runs, failed=failed, mean_seconds=mean, max_seconds=longest
        )
        for name, runs, failed, mean, longest in found
    ]


class Store(
    EventOps,
    WebhookOps,
    NotificationOps,
    AutomationOps,
    SweepOps,
    MetricOps,
    PrometheusMetricOps,
    AlertOps,
    SuspendOps,
    LLMStore,
    LLMStreamStore,
    ABC,
):
    """Abstract state store. Subclasses: `legato.store.sqlite.SQLiteStore`."""

    #: short backend name, e.g. "sqlite"
    backend: str = "abstract"

    # --- lifecycle -----------------------------------------------------------

    @property
    @abstractmethod
    def display_url(self) -> str:
        """The store's location with any password replaced by ``***``."""

    @abstractmethod
    def schema_version(self) -> int:
        """Number of the newest migration applied."""

    @abstractmethod
    def describe(self) -> StoreStatus:
        """Backend, masked URL, schema version (and the newest known), size, row counts."""

    @abstractmethod
    def prune_flow_runs(
        self,
        *,
        finished_before: datetime,
        states: Sequence[StateType],
        batch_size: int = 200,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete top-level runs in one of ``states`` (final states only) that ended
        before ``finished_before``, each with every subflow run below it, their task
        runs, logs, inputs, stored results and the cache entries of their task runs.

        One short transaction per ``batch_size`` top-level runs, so live writers
        wait at most one batch. ``dry_run`` counts without deleting.
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""

    def clock(self) -> datetime:
        """The store's current time (UTC). Heartbeats, lease lapses and due times are
        written and judged by it, so that processes on hosts whose clocks disagree
        still agree on whose lease lapsed. A file store is on this host: its clock is
        this host's."""
        return utcnow()

    # --- flow runs -----------------------------------------------------------

    @abstractmethod
    def create_flow_run(self, run: FlowRun, parameters_blob: bytes | None = None) -> None:
        """Insert a new flow run. ``parameters_blob`` keeps parameters JSON cannot hold.

        A SCHEDULED run with a ``work_queue`` is queued for workers: it is stored
        with ``scheduled_time`` defaulting to ``created``, and listeners of
        `RUNS_QUEUED` are notified (payload: the queue) when it commits.
        """

    @abstractmethod
    def get_flow_run(self, run_id: str) -> FlowRun | None:
        """The run with exactly this id, or None."""

    @abstractmethod
    def match_run_ids(self, prefix: str, limit: int = 2) -> list[str]:
        """Ids of flow runs that start with ``prefix`` (at most ``limit``)."""

    @abstractmethod
    def list_flow_runs(
        self,
        *,
        limit: int = 50,
        states: Sequence[StateType] | None = None,
        flow_name: str | None = None,
        parent_run_id: str | None = None,
        deployment: str | None = None,
        tag: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[FlowRun]:
        """Runs newest first (by creation time), filtered.

        ``tag``: only runs with exactly this tag. ``created_after`` is an inclusive
        lower bound on ``created``, ``created_before`` an exclusive upper one: the
        next page of a listing is ``created_before=<created of its last run>``
        (runs created at that very instant as the last one are skipped).
        """

    @abstractmethod
    def flow_run_stats(self, *, since: datetime, bucket_seconds: int) -> list[RunCount]:
        """Top-level runs created at or after ``since``, counted per time bucket and state.

        Bucket k starts at ``since + k * bucket_seconds`` (microsecond resolution);
        only buckets and states with runs appear. Sorted by (bucket_start, state value).
        """

    @abstractmethod
    def flow_duration_stats(self, *, since: datetime, limit: int = 10) -> list[FlowDurationStats]:
        """Per flow name, the top-level runs created at or after ``since`` that
        have a start and an end (the window the dashboard's chart counts): how
        many, how many failed or crashed, mean and max duration. Slowest mean
        first (ties by flow name), at most ``limit`` flows."""

    @abstractmethod
    def get_parameters_blob(self, run_id: str) -> bytes | None:
        """The pickled parameters saved with the run, if any."""

    @abstractmethod
    def find_child_run(self, parent_run_id: str, call_key: str) -> FlowRun | None:
        """The subflow run created at ``call_key`` inside ``parent_run_id``."""

    @abstractmethod
    def start_flow_run(
        self,
        run_id: str,
        owner: RunOwner,
        *,
        from_states: Iterable[StateType],
        now: datetime,
        expected_owner_token: str | None = None,
    ) -> FlowRun | None:
        """Move the run to RUNNING under ``owner`` if its state is one of ``from_states``
        (and, with ``expected_owner_token``, only while that token owns it: a run
        claimed by a worker starts only if the claim still holds).

        Sets start_time (first start only), heartbeat_at, clears pause, error
        and cancel request, and increments ``attempts``. Returns the updated
        run, or None when the run is not in one of ``from_states`` (nothing
        changes then).
        """

    @abstractmethod
    def heartbeat_flow_run(self, run_id: str, owner_token: str, now: datetime) -> HeartbeatReply:
        """Refresh heartbeat_at if ``owner_token`` still owns the run; report cancel requests."""

    @abstractmethod
    def finish_flow_run(
        self,
        run_id: str,
        owner_token: str,
        *,
        state: StateType,
        now: datetime,
        message: str | None = None,
        error: ErrorInfo | None = None,
        result: StoredResult | None = None,
        logs: Sequence[LogRecord] = (),
        replayed: int = 0,
    ) -> None:
        """Record the run's final state (or PENDING between flow retries). Fenced.

        ``replayed`` (here and at the other attempt ends: pause, reschedule, retry) is
        how many task calls the attempt answered from the journal; it is added to the
        flow's replay count (`metric_task_replays`) in the same write."""

    @abstractmethod
    def pause_flow_run(
        self,
        run_id: str,
        owner_token: str,
        pause: PauseInfo,
        *,
        now: datetime,
        logs: Sequence[LogRecord] = (),
        replayed: int = 0,
    ) -> None:
        """Move a running run to PAUSED with ``pause``; the owner is released. Fenced."""

    @abstractmethod
    def reschedule_flow_run(
        self,
        run_id: str,
        owner_token: str,
        *,
        scheduled_time: datetime,
        message: str,
        logs: Sequence[LogRecord] = (),
        replayed: int = 0,
    ) -> None:
        """Move a running run back to SCHEDULED, due at ``scheduled_time``, releasing
        its owner (a durable sleep: a worker claims it again when it is due). Fenced."""

    @abstractmethod
    def retry_flow_run(
        self,
        run_id: str,
        owner_token: str,
        *,
        error: ErrorInfo,
        message: str,
        wake_at: datetime | None = None,
        logs: Sequence[LogRecord] = (),
        replayed: int = 0,
    ) -> None:
        """Record a failed attempt that has flow retries left and count it in
        ``retries_used``. Without ``wake_at`` the run waits PENDING and keeps its owner
        (the retry happens in this process); with it, the run goes back to its queue,
        SCHEDULED at ``wake_at`` with its owner released (a worker takes the next
        attempt). Fenced."""

    @abstractmethod
    def transition_flow_run(
        self,
        run_id: str,
        *,
        to_state: StateType,
        from_states: Iterable[StateType],
        now: datetime,
        message: str | None = None,
        error: ErrorInfo | None = None,
        expected_owner_token: str | None = None,
    ) -> bool:
        """Compare-and-set the run's state, for actors other than its owner.

        Changes state only if the current state is in ``from_states`` (and,
        when given, the owner token matches). Final states set end_time. A move to
        a final state or to SCHEDULED releases the owner token: the process that
        ran the run fails its next write or heartbeat and stops (the fencing rule).
        Returns True when the change was made.
        """

    @abstractmethod
    def request_cancellation(self, run_id: str, *, now: datetime) -> StateType | None:
        """Cancel a run: paused, scheduled, pending or crashed runs become CANCELLED at once;
        a running run gets ``cancel_requested`` and stops at its next task boundary.
        Returns the run's state after the call, or None if there is no such run."""

    @abstractmethod
    def get_flow_result(self, run_id: str) -> StoredResult | None:
        """The stored return value of a completed run, if persisted."""

    # --- run inputs (human in the loop) --------------------------------------

    @abstractmethod
    def save_run_input(self, run_id: str, key: str, value_json: str | None) -> None:
        """Store the input given to pause point ``key`` (JSON text, or None for no input).
        Replaces an earlier value for the same key."""

    @abstractmethod
    def get_run_input(self, run_id: str, key: str) -> tuple[bool, str | None]:
        """(found, value_json) for pause point ``key``."""

    # --- task runs -----------------------------------------------------------

    @abstractmethod
    def record_task_run(
        self,
        task_run: TaskRun,
        owner_token: str,
        *,
        result: StoredResult | None = None,
        logs: Sequence[LogRecord] = (),
    ) -> None:
        """Insert or replace the task run at (flow_run_id, call_key), with its result
        and the logs it wrote, in one transaction. When ``task_run.cache_key`` is
        set, the state is COMPLETED and a result is given, the cache entry for that
        key points at this task run. Fenced by the flow run's owner."""

    def record_task_completion(
        self,
        completion: TaskCompletion,
        owner_token: str,
        *,
        result: StoredResult,
        logs: Sequence[LogRecord] = (),
    ) -> None:
        """Record a task call that completed with ``result``: what `record_task_run`
        records for ``completion.task_run(result.serializer)``. The engine's short
        path for a plain call uses it, so a backend may write the row without
        building the record (SQLite does: a TaskRun costs 2 µs to build, a tenth of
        the commit). Fenced by the flow run's owner."""
        self.record_task_run(
            completion.task_run(result.serializer), owner_token, result=result, logs=logs
        )

    def record_task_run_soon(
        self,
        task_run: TaskRun,
        owner_token: str,
        *,
        result: StoredResult | None = None,
        logs: Sequence[LogRecord] = (),
        committed: Callable[[BaseException | None], None],
    ) -> None:
        """Record as `record_task_run` does, possibly after returning: ``committed`` is
        called exactly once, with None once the record is committed (readable), or
        with the exception that kept it from being written (`RunOwnershipLost` when
        the fence fails, then nothing is written). Never raises for a failed write:
        the failure goes to ``committed``, which must not raise. This version writes
        before returning; a backend may instead commit the record with others'."""
        try:
            self.record_task_run(task_run, owner_token, result=result, logs=logs)
        except BaseException as exc:
            committed(exc)
            return
        committed(None)

    @abstractmethod
    def get_task_run(self, task_run_id: str) -> TaskRun | None:
        """The task run with this id, or None."""

    @abstractmethod
    def find_task_run(self, flow_run_id: str, call_key: str) -> TaskRun | None:
        """The task run recorded at ``call_key`` in the flow run, if any."""

    @abstractmethod
    def list_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        """All task runs of a flow run in order of first start."""

    @abstractmethod
    def count_task_runs(self, flow_run_id: str) -> dict[StateType, int]:
        """Number of task runs of a flow run in each state present."""

    @abstractmethod
    def get_task_result(self, task_run_id: str) -> StoredResult | None:
        """The stored result of a task run, if persisted."""

    @abstractmethod
    def mark_rolled_back(self, task_run_ids: Sequence[str], owner_token: str) -> None:
        """Flag task runs as rolled back (their on_rollback hooks ran). Fenced."""

    @abstractmethod
    def get_cached_result(self, cache_key: str, now: datetime) -> CachedResult | None:
        """The newest unexpired cache entry for ``cache_key`` with its result."""

    # --- logs ----------------------------------------------------------------

    @abstractmethod
    def append_logs(self, logs: Sequence[LogRecord]) -> None:
        """Store log records. Not fenced: logs of a lost run are still worth keeping."""

    @abstractmethod
    def read_logs(
        self,
        flow_run_id: str,
        *,
        after_id: int = 0,
        limit: int = 1000,
        task_run_id: str | None = None,
    ) -> list[LogRecord]:
        """Logs of a flow run with id greater than ``after_id``, oldest first."""

    # --- coordination: queued runs, leases, notifications ---------------------

    @abstractmethod
    def claim_flow_run(
        self,
        work_queues: Sequence[str],
        owner: RunOwner,
        *,
        now: datetime,
        lease_seconds: float,
    ) -> FlowRun | None:
        """Atomically take the next run for ``owner`` from ``work_queues``, or None.

        Candidates: SCHEDULED runs in one of the queues that are due
        (``scheduled_time``, else ``created``, at or before ``now``), and runs
        in those queues left PENDING or RUNNING by an owner whose heartbeat is
        older than ``lease_seconds`` (its lease lapsed: it died or lost touch).
        Higher priority first, then the earliest due. The claimed run becomes
        PENDING under ``owner`` with a fresh heartbeat; a previous owner's
        fenced writes then raise `RunOwnershipLost`. Any number of processes
        may claim at once: each run goes to exactly one of them. The owner
        keeps the lease with `heartbeat_flow_run`.
        """

    @abstractmethod
    def next_due_time(self, work_queues: Sequence[str]) -> datetime | None:
        """When the earliest SCHEDULED run in ``work_queues`` is due, or None."""

    @abstractmethod
    def acquire_lease(
        self, name: str, holder: str, *, now: datetime, ttl_seconds: float
    ) -> Lease | None:
        """Take or renew the lease ``name`` for ``holder`` until ``now + ttl_seconds``.

        Succeeds when nobody holds it, when ``holder`` already does (a renewal,
        same generation), or when the current holder's lease expired (a new
        generation). Returns the lease held, or None when someone else holds it.
        """

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up if ``holder`` holds it; True when it did."""

    @abstractmethod
    def get_lease(self, name: str) -> Lease | None:
        """The lease ``name`` as stored (possibly expired), or None."""

    @abstractmethod
    def save_worker(self, worker: WorkerInfo) -> None:
        """Record a worker, or its latest heartbeat (same id: replaced)."""

    @abstractmethod
    def list_workers(self, *, seen_since: datetime | None = None) -> list[WorkerInfo]:
        """Workers that reported at or after ``seen_since`` (all when None), newest first."""

    @abstractmethod
    def delete_workers(self, *, seen_before: datetime) -> int:
        """Forget workers whose last report is older than ``seen_before``; how many."""

    @abstractmethod
    def notify(self, channel: str, payload: str = "") -> None:
        """Wake every listener of ``channel`` (see `legato.store.notifications`)."""

    @abstractmethod
    def listen(self, channels: Sequence[str]) -> ChangeListener:
        """A listener for notifications on ``channels`` sent from now on."""

    # --- deployments -----------------------------------------------------------

    @abstractmethod
    def save_deployment(self, deployment: Deployment, *, now: datetime) -> Deployment:
        """Create the deployment, or replace the one with the same name.

        A replacement keeps the stored id, creation time, pause switch and
        scheduler watermark (``scheduled_until``). Returns it as stored.
        """

    @abstractmethod
    def get_deployment(self, name: str) -> Deployment | None:
        """The deployment called ``name``, or None."""

    @abstractmethod
    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""

    @abstractmethod
    def delete_deployment(self, name: str) -> bool:
        """Remove a deployment (its runs stay); True when it existed."""

    @abstractmethod
    def set_deployment_paused(self, name: str, paused: bool, *, now: datetime) -> bool:
        """Pause or resume a deployment's schedules; True when it exists."""

    @abstractmethod
    def advance_deployment_schedule(self, name: str, scheduled_until: datetime) -> None:
        """Move the scheduler's watermark forward (never back) to ``scheduled_until``."""

    @abstractmethod
    def create_flow_run_once(
        self, run: FlowRun, parameters_blob: bytes | None = None
    ) -> tuple[FlowRun, bool]:
        """Insert ``run`` unless a run with its ``idempotency_key`` exists.

        Returns (the stored run with that key, whether it was created now).
        Safe to race: any number of processes creating the same key make one
        run. A queued run notifies like `create_flow_run`.
        """

    # --- global limits -----------------------------------------------------------

    @abstractmethod
    def set_limit(
        self, name: str, slots: int, *, per_seconds: float | None = None, now: datetime
    ) -> Limit:
        """Create or change a limit (slots already taken stay taken)."""

    @abstractmethod
    def list_limits(self, *, now: datetime, names: Sequence[str] | None = None) -> list[Limit]:
        """Limits (those named, when ``names`` is given) by name, with slots active now."""

    @abstractmethod
    def delete_limit(self, name: str) -> bool:
        """Remove a limit and its slots; True when it existed."""

    @abstractmethod
    def acquire_limit_slot(
        self, name: str, holder: str, *, now: datetime, ttl_seconds: float
    ) -> bool:
        """Take a slot of limit ``name`` for ``holder`` if one is free now; atomic across
        processes. A concurrency slot lasts ``ttl_seconds`` unless renewed; a rate
        limit's slot lasts its window (``per_seconds``). False when none is free (or
        the limit does not exist any more); True when taken or already held."""

    @abstractmethod
    def renew_limit_slots(
        self, holders: Sequence[str], *, now: datetime, ttl_seconds: float
    ) -> None:
        """Extend the concurrency slots held by ``holders`` to ``now + ttl_seconds``."""

    @abstractmethod
    def release_limit_slots(self, holder: str) -> None:
        """Give back the concurrency slots of ``holder`` (rate slots run out by themselves)
        and notify `LIMIT_SLOTS_FREED` listeners."""

    # --- variables ---------------------------------------------------------------

    @abstractmethod
    def set_variable(
        self,
        name: str,
        value: str,
        *,
        tags: Sequence[str] = (),
        overwrite: bool,
        now: datetime,
    ) -> bool:
        """Store the JSON text ``value`` (and ``tags``) under ``name``. When the name is
        taken: replace both if ``overwrite``, else change nothing and return False
        (atomic: of racing creators exactly one wins). True when stored."""

    @abstractmethod
    def get_variable(self, name: str) -> StoredVariable | None:
        """The variable called ``name``, or None."""

    @abstractmethod
    def list_variables(self) -> list[StoredVariable]:
        """Every variable, by name."""

    @abstractmethod
    def delete_variable(self, name: str) -> bool:
        """Remove the variable ``name``; True when it existed."""

    # --- artifacts ---------------------------------------------------------------

    @abstractmethod
    def create_artifact(self, artifact: Artifact) -> None:
        """Store ``artifact``; one whose id is stored already is left as it is (a call
        replayed on resume makes the same id)."""

    @abstractmethod
    def update_artifact(
        self, artifact_id: str, *, type: str, data: str, description: str | None
    ) -> bool:
        """Replace the data (JSON text) of the artifact ``artifact_id`` of ``type``, and
        its description when one is given; False when there is no such artifact."""

    @abstractmethod
    def list_artifacts(
        self, *, key: str | None = None, flow_run_id: str | None = None, limit: int = 100
    ) -> list[Artifact]:
        """Artifacts, at most ``limit``: those of run ``flow_run_id`` in the order they
        were made, else (those with ``key``, when given) newest first."""

    # --- keyed transactions ------------------------------------------------------

    @abstractmethod
    def save_transaction_records(self, records: Sequence[TransactionRecord]) -> None:
        """Store the records of keyed transactions that committed, all in one store
        transaction; a key stored already keeps its first record (a commit happens
        once per key)."""

    @abstractmethod
    def get_transaction_record(self, key: str) -> TransactionRecord | None:
        """The record of the keyed transaction ``key``, or None when it never committed."""

    @abstractmethod
    def delete_transaction_record(self, key: str) -> bool:
        """Forget the keyed transaction ``key`` (its next run runs again); True when
        it existed. Records are kept otherwise: `prune_flow_runs` leaves them."""
