"""The leader's sweeps: changes nobody makes, made by the leader, so their events exist.

Events are written by the store when a state changes (database triggers). A run
whose process died, a pause that timed out, a run that is late, a deadline that
passed, a worker that went silent: none of these is a write by anyone, so until
someone acts no event exists and no alert can fire. The holder of the
``legato-scheduler`` lease (`legato.worker.scheduler`) runs these sweeps every
`SWEEP_SECONDS`; each is one indexed query when there is nothing to do.

1. Crashed runs: RUNNING runs whose heartbeat is older than the lease are judged
   by `legato.engine.liveness.reconcile`, the rule a reader applies (one code path):
   crashed by compare-and-set with the owner token; a worker's run is left for
   another worker to take over.
2. Pause timeouts: PAUSED runs past their pause timeout fail, by the same rule.
3. Late runs: a SCHEDULED run not started ``LEGATO_LATE_AFTER`` seconds after its
   scheduled time gets ``legato.flow-run.Late``, its id derived from the run and
   its scheduled time, so emitting it again stores nothing.
4. Deadlines (`legato.Deadline`): each due, unfired deadline of a run not final is
   marked fired and ``legato.flow-run.deadline-missed`` stored in one transaction
   (compare-and-set: two sweepers fire it once); "cancel" also cancels the run.
5. Offline workers: a worker that stopped reporting for a lease without saying it
   stopped gets ``legato.worker.offline``, once per worker start.

Alerts are sent from here and from the notifier that follows the events, never
from the process that died: a SIGKILLed flow cannot report its own crash.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from legato._event_records import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, Event
from legato.engine.events import build_event
from legato.engine.liveness import reconcile
from legato.records import FlowRun, WorkerInfo
from legato.states import StateType
from legato.store.base import Store

SWEEP_SECONDS = 2.0
BATCH = 500  # runs, deadlines read per sweep and kind; the rest come next sweep
_IDS = uuid.UUID("6f0c2a53-7d0e-4d6a-9b53-2f1f0c8d5e11")  # namespace of derived event ids

LATE = "legato.flow-run.Late"
DEADLINE_MISSED = "legato.flow-run.deadline-missed"
WORKER_OFFLINE = "legato.worker.offline"


def derived_id(*parts: str) -> str:
    """An event id that is the same every time it is derived from the same parts."""
    return uuid.uuid5(_IDS, "\x1f".join(parts)).hex


def run_resources(run: FlowRun, state_name: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A flow run's resource and related resources, as the state-change triggers
    write them: flow, deployment, work queue, parent run, tags."""
    resource = {
        RESOURCE_ID: f"legato.flow-run.{run.id}",
        RESOURCE_NAME: run.name,
        "legato.state-name": state_name,
    }
    related = [
        {
            RESOURCE_ID: f"legato.flow.{run.flow_name}",
            RESOURCE_ROLE: "flow",
            RESOURCE_NAME: run.flow_name,
        }
    ]
    if run.deployment is not None:
        related.append(
            {
                RESOURCE_ID: f"legato.deployment.{run.deployment}",
                RESOURCE_ROLE: "deployment",
                RESOURCE_NAME: run.deployment,
            }
        )
    if run.work_queue is not None:
        related.append(
            {
                RESOURCE_ID: f"legato.work-queue.{run.work_queue}",
                RESOURCE_ROLE: "work-queue",
                RESOURCE_NAME: run.work_queue,
            }
        )
    if run.parent_run_id is not None:
        related.append(
            {RESOURCE_ID: f"legato.flow-run.{run.parent_run_id}", RESOURCE_ROLE: "parent-flow-run"}
        )
    for tag in run.tags:
        related.append({RESOURCE_ID: f"legato.tag.{tag}", RESOURCE_ROLE: "tag"})
    return resource, related


@dataclass
class SweepResult:
    crashed: int = 0
    failed: int = 0
    late: int = 0
    deadlines: int = 0
    offline: int = 0


class Sweeper:
    """The sweeps of one leader. `sweep` runs all of them now; `maybe_sweep` runs them
    when `SWEEP_SECONDS` passed since the last time."""

    def __init__(
        self,
        store: Store,
        *,
        lease: float,
        late_after: float | None = None,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        from legato.settings import late_after_seconds

        self.store = store
        self.lease = timedelta(seconds=lease)
        self.late_after = timedelta(
            seconds=late_after if late_after is not None else late_after_seconds()
        )
        self.log = log
        self._next = 0.0
        # Scheduled times below this were swept for lateness (in this process).
        self._late_swept_to: datetime | None = None
        self._offline_emitted: set[str] = set()

    def maybe_sweep(self) -> SweepResult | None:
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + SWEEP_SECONDS
        return self.sweep()

    def sweep(self) -> SweepResult:
        return SweepResult(
            crashed=self.sweep_crashed(),
            failed=self.sweep_pause_timeouts(),
            late=self.sweep_late(),
            deadlines=self.sweep_deadlines(),
            offline=self.sweep_workers(),
        )

    def sweep_crashed(self) -> int:
        """Running runs whose heartbeat lapsed, judged (and written) by `reconcile`."""
        store = self.store
        cutoff = store.clock() - self.lease
        crashed = 0
        for run in store.list_flow_runs(states=[StateType.RUNNING], limit=BATCH):
            beat = run.heartbeat_at or run.start_time or run.created
            if beat >= cutoff or run.owner is None:
                continue
            if reconcile(store, run).state is StateType.CRASHED and run.work_queue is None:
                crashed += 1
                self.log(f"{run.name} ({run.id}) crashed: no heartbeat for {self.lease}")
        return crashed

    def sweep_pause_timeouts(self) -> int:
        """Paused runs past their pause timeout fail (`reconcile`'s rule)."""
        store = self.store
        now = store.clock()
        failed = 0
        for run in store.list_flow_runs(states=[StateType.PAUSED], limit=BATCH):
            if run.pause is None or run.pause.timeout_at is None or run.pause.timeout_at >= now:
                continue
            if reconcile(store, run).state is StateType.FAILED:
                failed += 1
                self.log(f"{run.name} ({run.id}) failed: its pause timed out")
        return failed

    def sweep_late(self) -> int:
        """``legato.flow-run.Late`` for scheduled runs past due by ``late_after``."""
        store = self.store
        due_before = store.clock() - self.late_after
        runs = store.list_late_runs(
            due_before=due_before, due_after=self._late_swept_to, limit=BATCH
        )
        events = []
        for run in runs:
            scheduled = run.scheduled_time or run.created
            resource, related = run_resources(run, "Late")
            events.append(
                build_event(
                    LATE,
                    resource,
                    related,
                    {
                        "scheduled_time": scheduled.isoformat(),
                        "late_after_seconds": self.late_after.total_seconds(),
                        "work_queue": run.work_queue,
                    },
                    id=derived_id("late", run.id, scheduled.isoformat()),
                    occurred=scheduled + self.late_after,
                )
            )
        stored = sum(1 for seq in store.emit_events(events) if seq is not None) if events else 0
        if len(runs) < BATCH:
            self._late_swept_to = due_before
        else:  # the rest next sweep (ties at the boundary are emitted again: no-ops)
            last = runs[-1]
            self._late_swept_to = last.scheduled_time or last.created
        return stored

    def sweep_deadlines(self) -> int:
        """Fire due deadlines: mark and emit in one transaction, once."""
        store = self.store
        now = store.clock()
        fired = 0
        for deadline in store.due_deadlines(now=now, limit=BATCH):
            run = store.get_flow_run(deadline.run_id)
            if run is None or run.state.is_final:
                continue
            resource, related = run_resources(run, run.state.value.capitalize())
            event = build_event(
                DEADLINE_MISSED,
                resource,
                related,
                {
                    "deadline": deadline.index,
                    "reference": deadline.reference,
                    "within_seconds": deadline.within_seconds,
                    "action": deadline.action,
                    "due_at": deadline.due_at.isoformat() if deadline.due_at else None,
                    "state": run.state.value,
                },
                id=derived_id("deadline", run.id, str(deadline.index)),
                occurred=deadline.due_at,
            )
            if store.fire_deadline(run.id, deadline.index, now=now, event=event):
                fired += 1
                then = "; cancelling it" if deadline.action == "cancel" else ""
                self.log(f"{run.name} ({run.id}) missed its deadline #{deadline.index}{then}")
        return fired

    def sweep_workers(self) -> int:
        """``legato.worker.offline`` for workers silent for a lease, once per start."""
        store = self.store
        cutoff = store.clock() - self.lease
        events: list[Event] = []
        for worker in store.list_workers():
            if worker.stopped_at is not None or worker.heartbeat_at >= cutoff:
                continue
            event_id = derived_id("offline", worker.id, worker.started.isoformat())
            if event_id in self._offline_emitted:
                continue
            self._offline_emitted.add(event_id)
            events.append(self._offline_event(worker, event_id))
        if not events:
            return 0
        stored = sum(1 for seq in store.emit_events(events) if seq is not None)
        for event in events:
            self.log(f"worker {event.resource[RESOURCE_NAME]} went offline")
        return stored

    def _offline_event(self, worker: WorkerInfo, event_id: str) -> Event:
        related = [
            {
                RESOURCE_ID: f"legato.work-queue.{queue}",
                RESOURCE_ROLE: "work-queue",
                RESOURCE_NAME: queue,
            }
            for queue in worker.queues
        ]
        return build_event(
            WORKER_OFFLINE,
            {RESOURCE_ID: f"legato.worker.{worker.id}", RESOURCE_NAME: worker.name},
            related,
            {
                "host": worker.host,
                "pid": worker.pid,
                "started": worker.started.isoformat(),
                "last_heartbeat": worker.heartbeat_at.isoformat(),
                "running": worker.running,
            },
            id=event_id,
            occurred=worker.heartbeat_at + self.lease,
        )
