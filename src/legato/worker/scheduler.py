"""The scheduler: turns deployments' schedules into queued runs.

Every worker runs it; only the holder of the ``legato-scheduler`` lease acts,
renewing the lease at each tick, so one worker leads and another takes over
within a lease after the leader dies. Runs are created a little ahead of
their slot (``LOOKAHEAD``) with the slot as their due time, so a worker can
claim each run the moment it falls due. A slot's run carries the idempotency
key ``deployment@slot``: however many schedulers ever race (a leader that lost
its lease without knowing it), a slot gets one run.

Missed slots (no scheduler was running): with ``catchup`` every one gets its
run; without it only the latest does, and the rest are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from legato.engine.queueing import queue_deployment_run, slot_key
from legato.records import Deployment, utcnow

if TYPE_CHECKING:
    from legato.client import Client

LEASE_NAME = "legato-scheduler"
TICK_SECONDS = 0.5
LOOKAHEAD = timedelta(seconds=5)
MAX_RUNS_PER_TICK = 1000  # a catch-up over years of slots proceeds in batches


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
        created = 0
        for deployment in store.list_deployments():
            if deployment.paused or not deployment.schedules:
                continue
            created += self._schedule(deployment)
        return created

    def _schedule(self, deployment: Deployment) -> int:
        from legato.schedules import slots_between

        now = utcnow()
        horizon = now + LOOKAHEAD
        start = deployment.scheduled_until or deployment.created
        if start >= horizon:
            return 0
        slots = sorted(
            {slot for s in deployment.schedules for slot in slots_between(s, start, horizon)}
        )
        due_before_now = [slot for slot in slots if slot <= now]
        ahead = [slot for slot in slots if slot > now]
        if not deployment.catchup and len(due_before_now) > 1:
            skipped = len(due_before_now) - 1
            self.log(f"{deployment.name}: skipped {skipped} missed slot(s) (no catchup)")
            due_before_now = due_before_now[-1:]
        chosen = (due_before_now + ahead)[:MAX_RUNS_PER_TICK]
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
        until = chosen[-1] if len(chosen) == MAX_RUNS_PER_TICK else horizon
        self.client.store.advance_deployment_schedule(deployment.name, until)
        return created

    def release(self) -> None:
        if self.leading:
            self.client.store.release_lease(LEASE_NAME, self.holder)
            self.leading = False
