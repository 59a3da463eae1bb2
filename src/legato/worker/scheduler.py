"""The scheduler: turns deployments' schedules into queued runs.

Every worker runs it; only the holder of the ``legato-scheduler`` lease acts,
renewing the lease at each tick, so one worker leads and another takes over
within a lease after the leader dies. Runs are created a little ahead of
their slot (``LOOKAHEAD``) with the slot as their due time, so a worker can
claim each run the moment it falls due. A slot's run carries the idempotency
key ``deployment@slot``: however many schedulers ever race (a leader that lost
its lease without knowing it), a slot gets one run.

Missed slots (no scheduler was running): with ``catchup`` every one gets its
run; without it only the latest does, and the rest are skipped. Slots are read
lazily, at most `SCAN_PER_TICK` per deployment and tick, so a year of missed
minutes costs bounded time and no memory.

A stored deployment the scheduler cannot serve (a schedule or a number
written by an older version, or by hand, that no longer passes the checks) is
skipped with one logged error, and every other deployment is served as usual.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from legato.client.checks import deployment_problem
from legato.engine.queueing import queue_deployment_run, slot_key
from legato.errors import ConfigurationError
from legato.records import Deployment, utcnow

if TYPE_CHECKING:
    from legato.automations.evaluator import Evaluator
    from legato.client import Client
    from legato.worker.sweeps import Sweeper

LEASE_NAME = "legato-scheduler"
TICK_SECONDS = 0.5
LOOKAHEAD = timedelta(seconds=5)
MAX_RUNS_PER_TICK = 1000  # a catch-up over years of slots proceeds in batches
EVALUATION_BATCHES_PER_TICK = 10  # automation evaluation: at most 10 x 500 events a tick
SCAN_PER_TICK = 100_000  # slots read per deployment and tick when skipping missed ones
EVENT_PRUNE_SECONDS = 3600.0  # the leader deletes events past LEGATO_EVENT_RETENTION this often


class Scheduler:
    def __init__(
        self,
        client: Client,
        *,
        holder: str,
        lease: float,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.client = client
        self.holder = holder
        self.lease = lease
        self.log = log
        self.leading = False
        self._next_tick = 0.0
        # Deployments skipped as unservable, by (name, updated): each is logged once,
        # and again only after it changes.
        self._reported: dict[str, datetime] = {}
        self._evaluator: Evaluator | None = None
        self._next_event_prune = 0.0  # monotonic; the first prune comes with leadership
        self._sweeper: Sweeper | None = None  # the leader's sweeps (legato.worker.sweeps)

    def seconds_to_next_tick(self) -> float:
        return max(0.0, self._next_tick - time.monotonic())

    def tick(self) -> int:
        """Renew or seek leadership; as leader, queue the runs of due slots. Returns
        the number of runs created."""
        now_mono = time.monotonic()
        if now_mono < self._next_tick:
            return 0
        self._next_tick = now_mono + TICK_SECONDS
        store = self.client.store
        lease = store.acquire_lease(LEASE_NAME, self.holder, now=utcnow(), ttl_seconds=self.lease)
        if lease is None:
            if self.leading:
                self.log("no longer the scheduler leader")
            self.leading = False
            return 0
        if not self.leading:
            self.log(f"leading the scheduler (generation {lease.generation})")
        self.leading = True
        if now_mono >= self._next_event_prune:
            self._next_event_prune = now_mono + EVENT_PRUNE_SECONDS
            self._prune_events()
        if self._sweeper is None:
            from legato.worker.sweeps import Sweeper

            self._sweeper = Sweeper(store, lease=self.lease, log=self.log)
        self._sweeper.maybe_sweep()
        created = 0
        for deployment in store.list_deployments():
            if deployment.paused or not deployment.schedules:
                continue
            problem = deployment_problem(deployment)
            if problem is None:
                try:
                    created += self._schedule(deployment)
                except ConfigurationError as exc:  # a schedule failing past its check
                    problem = str(exc)
            if problem is not None:
                self._report(deployment, problem)
            else:
                self._reported.pop(deployment.name, None)
        self._evaluate_automations()
        return created

    def evaluate_now(self) -> None:
        """New events were stored (`EVENTS_STORED`): as leader, evaluate automations now
        rather than at the next tick, so an event's triggered run starts promptly."""
        if self.leading:
            self._evaluate_automations()

    def _evaluate_automations(self) -> None:
        """The leader evaluates automations too (one evaluator per store; see
        `legato.automations.evaluator`): a few batches a tick, then due actions."""
        if self._evaluator is None:
            from legato.automations.evaluator import Evaluator

            self._evaluator = Evaluator(self.client, log=self.log)
        for _ in range(EVALUATION_BATCHES_PER_TICK):
            if self._evaluator.step().events < self._evaluator.batch:
                break

    def _prune_events(self) -> None:
        from legato.settings import event_retention_seconds

        try:
            retention = timedelta(seconds=event_retention_seconds())
        except ConfigurationError as exc:  # reported; scheduling goes on
            self.log(f"error: events are not pruned: {exc}")
            return
        pruned = self.client.prune_events(retention)
        if pruned:
            self.log(f"pruned {pruned} event(s) older than LEGATO_EVENT_RETENTION")

    def _report(self, deployment: Deployment, problem: str) -> None:
        if self._reported.get(deployment.name) == deployment.updated:
            return
        self._reported[deployment.name] = deployment.updated
        self.log(
            f"error: deployment '{deployment.name}' skipped, its scheduled runs are not "
            f"created: {problem}; fix it with `legato deploy ... --name {deployment.name}` "
            f"or delete it with `legato deployment delete {deployment.name}`"
        )

    def _schedule(self, deployment: Deployment) -> int:
        from legato.schedules import slots

        now = utcnow()
        horizon = now + LOOKAHEAD
        start = deployment.scheduled_until or deployment.created
        if start >= horizon:
            return 0
        # Each schedule's slots are read lazily. With catchup, a schedule gives at
        # most its first MAX_RUNS_PER_TICK (all the merged batch can use); without,
        # only its latest due slot and those ahead, reading at most SCAN_PER_TICK
        # missed ones a tick.
        found: set[datetime] = set()
        skipped = 0
        scanned_to: datetime | None = None  # without catchup: read up to here only
        for schedule in deployment.schedules:
            latest: datetime | None = None
            kept = passed = 0
            for slot in slots(schedule, start):
                if slot > horizon:
                    break
                if deployment.catchup or slot > now:
                    found.add(slot)
                    kept += 1
                    if kept >= MAX_RUNS_PER_TICK:
                        break
                    continue
                if latest is not None:
                    passed += 1
                    if passed >= SCAN_PER_TICK:
                        # ``slot`` is due too, so ``latest`` and all before it are missed.
                        scanned_to = latest if scanned_to is None else min(scanned_to, latest)
                        latest = None
                        break
                latest = slot
            skipped += passed
            if latest is not None:
                found.add(latest)
        if scanned_to is not None:
            # Slots past ``scanned_to`` are read again next tick; none is queued now.
            skipped += sum(1 for slot in found if slot <= scanned_to)
            chosen: list[datetime] = []
            until = scanned_to
        else:
            due = sorted(slot for slot in found if slot <= now)
            if not deployment.catchup and len(due) > 1:
                skipped += len(due) - 1
            if not deployment.catchup:
                found.difference_update(due[:-1])
            chosen = sorted(found)[:MAX_RUNS_PER_TICK]
            until = chosen[-1] if len(chosen) == MAX_RUNS_PER_TICK else horizon
        if skipped:
            self.log(f"{deployment.name}: skipped {skipped} missed slot(s) (no catchup)")
        created = 0
        for slot in chosen:
            _, new = queue_deployment_run(
                self.client.store,
                deployment,
                dict(deployment.parameters),
                scheduled_time=slot,
                idempotency_key=slot_key(deployment, slot.isoformat()),
            )
            created += new
        self.client.store.advance_deployment_schedule(deployment.name, until)
        return created

    def release(self) -> None:
        if self.leading:
            self.client.store.release_lease(LEASE_NAME, self.holder)
            self.leading = False
