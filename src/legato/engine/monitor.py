"""The run monitor: one background thread per process for all runs executing in it.

About once a second (``LEGATO_HEARTBEAT_SECONDS``) it, for every active run:
- renews the heartbeat and learns of cancellation and suspension requests;
- commits buffered log lines;
- records task runs that have been running for a while as RUNNING, so other
  processes see long tasks in flight (short tasks get a single write at the end).
"""

from __future__ import annotations

import threading
import time

from legato import _clock
from legato.engine import faults as _faults
from legato.engine.context import FlowRunContext
from legato.engine.limits import wake_waiters
from legato.engine.liveness import lease_seconds
from legato.errors import RunOwnershipLost
from legato.records import utcnow
from legato.settings import env_float


class RunMonitor:
    def __init__(self) -> None:
        self._runs: dict[str, FlowRunContext] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.interval = env_float("LEGATO_HEARTBEAT_SECONDS", 1.0)
        self.ticks = 0  # rounds made: tests wait for "two more ticks" instead of sleeping

    def add(self, ctx: FlowRunContext) -> None:
        with self._lock:
            self._runs[ctx.run.id] = ctx
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="legato-monitor", daemon=True
                )
                self._thread.start()

    def remove(self, ctx: FlowRunContext) -> None:
        with self._lock:
            if self._runs.get(ctx.run.id) is ctx:
                del self._runs[ctx.run.id]

    def _loop(self) -> None:
        failing: set[str] = set()  # runs whose last tick failed: reported once
        while True:
            _clock.wait(self._wake, self.interval)  # virtual in tests: leases lapse with it
            with self._lock:
                runs = list(self._runs.values())
            for ctx in runs:
                try:
                    self.tick(ctx)
                except Exception as exc:
                    # A store hiccup must not kill the monitor: the next tick retries,
                    # and the first failure of a streak is said once.
                    if ctx.run.id not in failing:
                        failing.add(ctx.run.id)
                        _report(ctx, f"heartbeat failed ({type(exc).__name__}: {exc}); retrying")
                else:
                    if ctx.run.id in failing:
                        failing.discard(ctx.run.id)
                        _report(ctx, "heartbeat works again")
            with self._lock:
                failing &= set(self._runs)
                self.ticks += 1

    def tick(self, ctx: FlowRunContext) -> None:
        injector = _faults.ACTIVE
        if injector is not None and injector.plan.freeze_heartbeat:
            return  # a frozen process, as other processes see it (fault injection)
        store = ctx.store
        reply = store.heartbeat_flow_run(ctx.run.id, ctx.owner_token, store.clock())
        if not reply.still_owner:
            ctx.lost = True  # taken over, or ended by someone else: stop, write nothing
            wake_waiters(store)  # tasks waiting for a limit slot see it at once
            return
        if reply.cancel_requested and not ctx.cancel_requested:
            ctx.cancel_requested = True
            wake_waiters(store)
        if reply.pause_requested:
            ctx.pause_requested = True  # the flow body pauses at its next task call
        logs = ctx.take_logs()
        if logs:
            try:
                store.append_logs(logs)
            except BaseException:
                ctx.put_back_logs(logs)  # written with the next record or tick instead
                raise
        if ctx.held_slots:
            with ctx.lock:
                holders = list(ctx.held_slots)
            store.renew_limit_slots(holders, now=utcnow(), ttl_seconds=lease_seconds())
        threshold = time.monotonic() - self.interval
        # Hold the context lock while writing so a task cannot finish (and write its
        # final record) between our check and our RUNNING write.
        with ctx.lock:
            for entry in ctx.in_flight.values():
                started_mono, written, task_call = entry
                if not written and started_mono <= threshold:
                    try:
                        store.record_task_run(task_call.running_record(), ctx.owner_token)
                    except RunOwnershipLost:
                        ctx.stopped = True
                        return
                    entry[1] = True


def _report(ctx: FlowRunContext, what: str) -> None:
    """A monitor problem, on stderr now and in the run's logs once they can be written."""
    import logging
    import sys

    from legato.records import LogRecord

    message = f"legato: flow run {ctx.run.id}: {what}"
    sys.stderr.write(message + "\n")
    ctx.add_log(
        LogRecord(
            flow_run_id=ctx.run.id,
            timestamp=utcnow(),
            level=logging.WARNING,
            message=message,
            logger="legato.monitor",
        )
    )


_monitor: RunMonitor | None = None
_monitor_lock = threading.Lock()


def get_monitor() -> RunMonitor:
    global _monitor
    if _monitor is None:
        with _monitor_lock:
            if _monitor is None:
                _monitor = RunMonitor()
    return _monitor
