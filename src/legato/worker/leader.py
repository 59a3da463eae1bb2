"""The duties of the store's one leader, whoever holds the scheduler lease.

Schedules, sweeps, automation evaluation and event pruning run in
`Scheduler.tick`; notifications are sent on a thread of their own. A `legato
worker` runs them in its loop; `legato server` runs them on a `LeaderThread`,
so a store served only by a server still sweeps, evaluates and alerts. Several
processes may run them: the lease makes one of them the leader at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from legato.errors import StoreError

if TYPE_CHECKING:
    from legato.client import Client

# How long the thread waits after the store could not be reached.
RETRY_SECONDS = 2.0
STOP_CHECK_SECONDS = 0.5


class Leader:
    """The scheduler (with sweeps and automations) and the notification sender."""

    def __init__(
        self,
        client: Client,
        *,
        holder: str,
        lease: float,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        from legato.notify.sender import NotificationDuty
        from legato.worker.scheduler import Scheduler

        self.scheduler = Scheduler(client, holder=holder, lease=lease, log=log)
        self.notifications = NotificationDuty(lambda: client.store, owner=holder, log=log)

    @property
    def leading(self) -> bool:
        return self.scheduler.leading

    def tick(self) -> None:
        """Renew or seek the lease; as leader, do what is due (cheap when nothing is)."""
        self.scheduler.tick()
        self.notifications.tick(self.scheduler.leading)

    def seconds_to_next_tick(self) -> float:
        return self.scheduler.seconds_to_next_tick()

    def evaluate_now(self) -> None:
        """New events were stored: as leader, evaluate automations at once."""
        self.scheduler.evaluate_now()

    def close(self) -> None:
        """Stop sending and hand the lease back, so another process leads at once."""
        self.notifications.stop()
        self.scheduler.release()


class LeaderThread:
    """`Leader` ticking on a daemon thread until `stop`."""

    def __init__(self, leader: Leader, *, log: Callable[[str], None]) -> None:
        self.leader = leader
        self.log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="legato-leader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        from legato.store.notifications import EVENTS_STORED

        store = self.leader.scheduler.client.store
        try:
            while not self._stop.is_set():
                try:
                    # Woken by stored events, as a worker's loop is: an event's
                    # automation runs at once, not at the next tick.
                    with store.listen([EVENTS_STORED]) as listener:
                        while not self._stop.is_set():
                            self.leader.tick()
                            # Capped: a stop is noticed within half a second.
                            wait = min(
                                STOP_CHECK_SECONDS, max(0.02, self.leader.seconds_to_next_tick())
                            )
                            if listener.wait(wait):
                                self.leader.evaluate_now()
                except StoreError as exc:  # out of reach after its own retries: try again
                    self.log(
                        f"store unreachable, the leader's duties retry in {RETRY_SECONDS:g}s: {exc}"
                    )
                    self._stop.wait(RETRY_SECONDS)
        finally:
            try:
                self.leader.close()
            except StoreError as exc:
                self.log(f"could not hand back the scheduler lease: {exc}")
