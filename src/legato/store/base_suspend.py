"""Suspending a running flow run from outside (mixed into `legato.store.base.Store`).

Like a cancellation request: the flag is set on the run's row, the run's process
learns of it with its next heartbeat (`HeartbeatReply.pause_requested`) and pauses
itself at its next task boundary. The flag lives only while the run is running: any
state change away from running clears it (a trigger beside each backend's SQL).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from legato.states import StateType


class SuspendOps(ABC):
    """Suspension requests every backend provides."""

    @abstractmethod
    def request_pause(self, run_id: str) -> StateType | None:
        """Ask run ``run_id`` to pause at its next task boundary when it is running;
        a run in any other state is left as it is. Returns the run's state (None:
        no such run)."""
