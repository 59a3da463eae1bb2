"""The client: one service layer over the store and the engine.

Everything a person or program can ask of legato goes through here; the CLI
(and later the REST API and web UI) are thin views over it. Reads reconcile
liveness: a running run whose process is gone reads as crashed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato.client.checks import (
    INT32_MAX,
    INT64_MAX,
    MAX_PER_SECONDS,
    check_int,
    check_seconds,
    check_text,
)
from legato.client.deployments import DeploymentOps
from legato.client.events import EventClientOps
from legato.client.fork import ForkClientOps
from legato.client.prompts import PromptClientOps
from legato.client.webhooks import WebhookClientOps
from legato.engine.calls import (
    requeue_run,
    resolve_run_id,
    resume_run,
    run_flow_with_observer,
)
from legato.engine.entrypoints import load_flow
from legato.engine.liveness import reconcile
from legato.engine.results import REFERENCE, deserialize
from legato.errors import (
    ConfigurationError,
    LimitNotFoundError,
    ResultNotAvailableError,
    RunNotFoundError,
    RunStateError,
    VariableNotFoundError,
)
from legato.records import (
    Artifact,
    FlowDurationStats,
    FlowRun,
    Limit,
    LogRecord,
    PruneResult,
    RunCount,
    StoredResult,
    StoredVariable,
    StoreStatus,
    TaskRun,
    WorkerInfo,
    utcnow,
)
from legato.states import State, StateType
from legato.store import get_default_store
from legato.store.base import Store

if TYPE_CHECKING:
    from legato.engine.observer import RunObserver
    from legato.flows import Flow


# A worker reports every few seconds (its poll interval); silent longer than
# this, it is taken for gone.
WORKER_ALIVE_SECONDS = 30.0
# Finished runs whose task runs `Client.finished_task_runs` keeps in memory.
FINISHED_CACHE_RUNS = 8


def _preview(stored: StoredResult | None, what: str, limit: int) -> str | None:
    from legato.client.views import short_repr

    if stored is None:
        return None
    if stored.serializer == REFERENCE:  # possibly large: named, not loaded
        import json

        reference = json.loads(stored.payload)
        return f"({reference['size']:,} bytes kept in result storage at {reference['url']})"
    try:
        value = deserialize(stored, what)
    except Exception as exc:  # a result may need code this process cannot import
        return f"(cannot show the result here: {type(exc).__name__}: {exc})"
    return short_repr(value, limit)


class Client(DeploymentOps, EventClientOps, WebhookClientOps, PromptClientOps, ForkClientOps):
    def __init__(self, store: Store | None = None) -> None:
        """Use ``store``, or the configured default store."""
        self._store = store
        self._finished_cache: dict[tuple[object, ...], list[TaskRun]] = {}

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = get_default_store()
        return self._store

    # -- reading -------------------------------------------------------------

    def resolve_run(self, id_or_prefix: str) -> FlowRun:
        """The run matching a full id or unambiguous prefix; crash state reconciled.
        Raises RunNotFoundError / AmbiguousRunIdError."""
        run_id = resolve_run_id(self.store, id_or_prefix)
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> FlowRun:
        run = self.store.get_flow_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return reconcile(self.store, run)

    def list_runs(
        self,
        *,
        limit: int = 50,
        states: Sequence[StateType] | None = None,
        flow_name: str | None = None,
        deployment: str | None = None,
        tag: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[FlowRun]:
        """Newest first; running runs whose process died read as crashed.

        ``created_before`` (exclusive) pages: pass the ``created`` of the last run
        of one page to get the next, which stays fast however deep the page."""
        check_int(limit, "the number of runs to list (limit)", low=1, high=INT32_MAX)
        query_states = list(states) if states else None
        if query_states is not None:
            # A run stored as running (or paused) may really be crashed (or failed by
            # its pause timeout): fetch those too, reconcile, then filter.
            if StateType.CRASHED in query_states and StateType.RUNNING not in query_states:
                query_states.append(StateType.RUNNING)
            if StateType.FAILED in query_states and StateType.PAUSED not in query_states:
                query_states.append(StateType.PAUSED)
        out: list[FlowRun] = []
        offset_limit = limit
        while True:
            runs = self.store.list_flow_runs(
                limit=offset_limit,
                states=query_states,
                flow_name=flow_name,
                deployment=deployment,
                tag=tag,
                created_after=created_after,
                created_before=created_before,
            )
            out = []
            for run in runs:
                if run.state in (StateType.RUNNING, StateType.PAUSED):
                    run = reconcile(self.store, run)
                if states and run.state not in states:
                    continue
                out.append(run)
            # Filtering after the query can leave fewer than asked: widen and retry.
            if len(out) >= limit or len(runs) < offset_limit:
                return out[:limit]
            offset_limit = min(offset_limit * 2, INT64_MAX)

    def workers(self, *, include_gone: bool = False) -> list[WorkerInfo]:
        """Workers alive now (reported within `WORKER_ALIVE_SECONDS`), newest first;
        with ``include_gone``, also those stopped or silent in the last day."""
        now = utcnow()
        if include_gone:
            return self.store.list_workers(seen_since=now - timedelta(days=1))
        recent = self.store.list_workers(seen_since=now - timedelta(seconds=WORKER_ALIVE_SECONDS))
        return [worker for worker in recent if worker.stopped_at is None]

    def task_runs(self, run_id: str) -> list[TaskRun]:
        return self.store.list_task_runs(run_id)

    def finished_task_runs(self, run: FlowRun) -> list[TaskRun]:
        """``task_runs`` of ``run``, remembered while the run stays as it is.

        A finished run's task runs do not change until it is resumed, which
        changes its state, attempts or end time: that is the key. A long-lived
        process (the server) re-reads a run of 10,000 tasks only when it moves.
        """
        if not run.state.is_final:
            return self.task_runs(run.id)
        key = (run.id, run.state, run.attempts, run.end_time)
        cache = self._finished_cache
        found = cache.get(key)
        if found is None:
            found = self.task_runs(run.id)
            cache[key] = found
            while len(cache) > FINISHED_CACHE_RUNS:
                del cache[next(iter(cache))]
        return found

    def task_run(self, run_id: str, task_run_id: str) -> TaskRun:
        """One task run of flow run ``run_id`` (RunNotFoundError if it has none such)."""
        found = self.store.get_task_run(task_run_id)
        if found is None or found.flow_run_id != run_id:
            raise RunNotFoundError(task_run_id, kind="task run")
        return found

    def task_result_preview(self, task_run: TaskRun, limit: int = 500) -> str | None:
        """A short repr of a task run's stored result, or None when it has none.
        A result that cannot be decoded here says why instead."""
        if not task_run.has_result:
            return None
        stored = self.store.get_task_result(task_run.id)
        return _preview(stored, f"task run {task_run.id}", limit)

    def run_result_preview(self, run: FlowRun, limit: int = 500) -> str | None:
        """A short repr of a completed run's return value, or None when it has none."""
        if run.state is not StateType.COMPLETED or not run.has_result:
            return None
        return _preview(self.store.get_flow_result(run.id), f"flow run {run.id}", limit)

    def late_runs(self, *, limit: int = 20) -> list[FlowRun]:
        """Queued runs still waiting for a worker well past their due time."""
        from legato.client.views import late_seconds

        waiting = self.list_runs(states=[StateType.SCHEDULED], limit=500)
        return [run for run in waiting if late_seconds(run) is not None][:limit]

    def run_stats(self, *, since: datetime, bucket_seconds: int) -> list[RunCount]:
        """Top-level runs created since ``since``, counted by time bucket and state."""
        return self.store.flow_run_stats(since=since, bucket_seconds=bucket_seconds)

    def slowest_flows(self, *, since: datetime, limit: int = 10) -> list[FlowDurationStats]:
        """Flows by mean duration of their finished top-level runs created since ``since``."""
        return self.store.flow_duration_stats(since=since, limit=limit)

    def child_runs(self, run_id: str) -> list[FlowRun]:
        children = self.store.list_flow_runs(limit=10_000, parent_run_id=run_id)
        return [reconcile(self.store, c) for c in reversed(children)]

    def read_logs(self, run_id: str, *, after_id: int = 0, limit: int = 1000) -> list[LogRecord]:
        check_int(after_id, "the log id to read after (after)", low=0, high=INT64_MAX)
        check_int(limit, "the number of log lines to read (limit)", low=1, high=INT32_MAX)
        return self.store.read_logs(run_id, after_id=after_id, limit=limit)

    def run_result(self, run_id: str) -> Any:
        """The decoded return value of a completed run (ResultNotAvailableError if none)."""
        run = self.get_run(run_id)
        if run.state is not StateType.COMPLETED:
            raise ResultNotAvailableError(
                f"flow run {run_id} is {run.state.value}; only completed runs have a result"
            )
        return deserialize(self.store.get_flow_result(run_id), f"flow run {run_id}")

    # -- acting --------------------------------------------------------------

    def load_flow(self, target: str) -> Flow[Any, Any]:
        """Load ``path/to/file.py:flow_fn`` or ``package.module:flow_fn``.
        Raises TargetNotFoundError with a clear message."""
        return load_flow(target)

    def validate_parameters(
        self, flow: Flow[Any, Any], parameters: dict[str, Any], *, partial: bool = False
    ) -> dict[str, Any]:
        """Coerced parameters, or ParameterValidationError naming each bad parameter.
        ``partial``: required parameters may be missing (a deployment's defaults)."""
        return flow.parameter_model.validate(
            parameters, coerce=flow.validate_parameters, partial=partial
        )

    def run_flow(
        self,
        flow: Flow[Any, Any],
        parameters: dict[str, Any],
        *,
        observer: RunObserver | None = None,
    ) -> State:
        """Run ``flow`` in this process; returns its final state (never raises for
        flow failure; raises ParameterValidationError before anything runs)."""
        params = self.validate_parameters(flow, parameters)
        return run_flow_with_observer(flow, params, observer, self.store)

    def resume_run(
        self,
        id_or_prefix: str,
        run_input: dict[str, Any] | None = None,
        *,
        observer: RunObserver | None = None,
        on_changed_args: str = "error",
    ) -> State:
        """Re-execute a failed, crashed, paused or cancelled run in this process.
        Raises InvalidRunInputError (run stays paused) or RunStateError before running.
        ``on_changed_args``: what replay does with a completed call whose arguments
        changed ("error", "replay" the recorded result, or "rerun" the call)."""
        run_id = resolve_run_id(self.store, id_or_prefix)
        return resume_run(
            run_id,
            run_input,
            observer=observer,
            store=self.store,
            on_changed_args=on_changed_args,
        )

    def retry_run(self, id_or_prefix: str) -> FlowRun:
        """Retry a failed, crashed or cancelled worker run from where it failed:
        queued again, its completed tasks replay instead of running twice."""
        run = self.resolve_run(id_or_prefix)
        if run.state not in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
            raise RunStateError(
                f"flow run {run.id} is {run.state.value}: only a failed, crashed or cancelled "
                f"run is retried (a paused run is resumed, with its input if it asks for one)"
            )
        return self.requeue_run(run.id)

    def requeue_run(
        self,
        id_or_prefix: str,
        run_input: dict[str, Any] | None = None,
        *,
        on_changed_args: str = "error",
    ) -> FlowRun:
        """Resume a worker's run (one with a work queue) by queueing it again: a worker
        claims it and replays it. Input for a paused run is validated and saved first."""
        run_id = resolve_run_id(self.store, id_or_prefix)
        return requeue_run(run_id, run_input, store=self.store, on_changed_args=on_changed_args)

    # -- global limits -------------------------------------------------------

    def set_limit(self, name: str, slots: int, *, per_seconds: float | None = None) -> Limit:
        """Create or change a global limit; tasks tagged ``name`` hold one of its slots
        (``per_seconds``: at most ``slots`` starts per window instead)."""
        from legato.engine.limits import forget_known_limits

        if not name or not name.strip() or name != name.strip():
            raise ConfigurationError(
                f"invalid limit name {name!r}: a non-empty tag without surrounding spaces"
            )
        check_text(name, "the limit name")
        check_int(slots, f"the slots of limit '{name}'", low=0, high=INT32_MAX)
        if per_seconds is not None:
            per_seconds = check_seconds(
                per_seconds, f"the window (--per) of limit '{name}'", high=MAX_PER_SECONDS
            )
        limit = self.store.set_limit(name, slots, per_seconds=per_seconds, now=utcnow())
        forget_known_limits()
        return limit

    def limits(self) -> list[Limit]:
        return self.store.list_limits(now=utcnow())

    def delete_limit(self, name: str) -> None:
        from legato.engine.limits import forget_known_limits

        if not self.store.delete_limit(name):
            raise LimitNotFoundError(name)
        forget_known_limits()

    # -- variables -----------------------------------------------------------

    def set_variable(
        self,
        name: str,
        value: Any,
        *,
        tags: Sequence[str] | None = None,
        overwrite: bool = False,
    ) -> None:
        """Store the JSON ``value`` as variable ``name`` (`VariableExistsError` when it
        exists and not ``overwrite``)."""
        from legato.engine.variables import set_variable

        set_variable(self.store, name, value, tags=tags, overwrite=overwrite)

    def get_variable(self, name: str) -> Any:
        """The value of variable ``name``; `VariableNotFoundError` when there is none."""
        from legato.engine.variables import decode_value, get_variable

        stored = get_variable(self.store, name)
        if stored is None:
            raise VariableNotFoundError(name)
        return decode_value(stored)

    def variables(self) -> list[StoredVariable]:
        """Every variable by name (values as JSON text: decode with `json.loads`)."""
        return self.store.list_variables()

    def delete_variable(self, name: str) -> None:
        from legato.engine.variables import delete_variable

        if not delete_variable(self.store, name):
            raise VariableNotFoundError(name)

    # -- artifacts -----------------------------------------------------------

    def artifacts(
        self, *, key: str | None = None, run: str | None = None, limit: int = 100
    ) -> list[Artifact]:
        """Artifacts: those of ``run`` (an id or unambiguous prefix) in the order it made
        them, else newest first; only those with ``key`` when given."""
        check_int(limit, "the number of artifacts (--limit)", low=1, high=INT32_MAX)
        run_id = None if run is None else resolve_run_id(self.store, run)
        return self.store.list_artifacts(key=key, flow_run_id=run_id, limit=limit)

    # -- the store itself ----------------------------------------------------

    def store_status(self) -> StoreStatus:
        """Backend, masked URL, schema version, size and row counts of the store."""
        return self.store.describe()

    def forget_transaction(self, key: str) -> bool:
        """Delete the record of the keyed transaction ``key``, so that its next run
        runs the block again; False when the key never committed. `prune_runs`
        keeps these records: they are what makes the block run once."""
        return self.store.delete_transaction_record(key)

    def prune_runs(
        self,
        older_than: timedelta,
        *,
        states: Sequence[StateType] = (),
        batch_size: int = 200,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete finished top-level runs (with their subflow runs, task runs, logs and
        results) that ended more than ``older_than`` ago; ``states`` narrows which."""
        if older_than.total_seconds() <= 0:
            raise ConfigurationError("the age of runs to prune must be more than 0 seconds")
        return self.store.prune_flow_runs(
            finished_before=utcnow() - older_than,
            states=states,
            batch_size=batch_size,
            dry_run=dry_run,
        )

    def cancel_run(self, id_or_prefix: str) -> FlowRun:
        """Request cancellation; returns the run after the request."""
        run = self.resolve_run(id_or_prefix)
        self._cancel_tree(run)
        return self.get_run(run.id)

    def suspend_run(self, id_or_prefix: str) -> tuple[FlowRun, bool]:
        """Ask a running run to pause at its next task boundary (its process is then
        released; `legato resume` continues it). A run in any other state is left as
        it is. Returns the run and whether the request was made."""
        run = self.resolve_run(id_or_prefix)
        state = self.store.request_pause(run.id)
        return self.get_run(run.id), state is StateType.RUNNING

    def _cancel_tree(self, run: FlowRun) -> None:
        # Subflow runs go too: a parent paused by its child would otherwise leave
        # the child paused forever, and a running child must stop with its parent.
        # A crashed run can be cancelled too (the store cancels it at once).
        if run.state.is_final and run.state is not StateType.CRASHED:
            return
        self.store.request_cancellation(run.id, now=utcnow())
        for child in self.store.list_flow_runs(limit=10_000, parent_run_id=run.id):
            self._cancel_tree(reconcile(self.store, child))
