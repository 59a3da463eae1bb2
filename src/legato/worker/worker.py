"""The worker loop: claim queued runs, run each in a subprocess, watch them end.

A worker claims a run under a token of its own and starts a child process
with that token (`legato.worker.child`); the child starts the run only while
the claim holds, then heartbeats it like any run. Claiming
wakes on a notification (a run was queued), when the earliest waiting run
falls due, or every ``poll_seconds`` (runs whose lease lapsed become
claimable without any notification).

Children are forked from a fork server with legato already imported (about
a millisecond instead of an interpreter start per run). A child of a run
whose deployment's code is a file stays warm: it takes the next claimed run
of the same deployment (its file unchanged) instead of exiting, up to
``warm_runs`` runs; one that dies loses only the run it held, which is
settled as crashed like any child's. They live in a
session of their own (a terminal's Ctrl-C reaches the worker only, which then
shuts down in order) and, on Linux, die with the worker (``PR_SET_PDEATHSIG``
on the fork server, which exits with the worker), as they would with its
machine: their runs are then claimed again by another worker once their lease
lapses.

Once a heartbeat interval the worker reads its children's runs: a run taken
over by another worker gets its old child killed; a run asked to cancel gets
``grace_seconds`` to stop at a task boundary by itself, then its child is
killed and the run recorded cancelled. A flow retry of a worker's run goes
back to the queue (the child exits; any worker takes the next attempt).

SIGTERM (or `stop`): stop claiming, give running flows ``grace_seconds`` to
finish, then stop the rest and hand their runs back to the queue, where
another worker resumes them by replay.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from legato.client.views import LATE_AFTER_SECONDS
from legato.engine.ids import new_id
from legato.engine.liveness import current_owner, hostname, lease_seconds
from legato.errors import ConfigurationError, RunOwnershipLost, StoreError
from legato.records import ErrorInfo, FlowRun, LogRecord, WorkerInfo, utcnow
from legato.settings import env_float
from legato.states import StateType
from legato.store.notifications import EVENTS_STORED, RUNS_QUEUED

if TYPE_CHECKING:
    from legato.client import Client
    from legato.store.base import Store
    from legato.store.notifications import ChangeListener
    from legato.worker.forkserver import ForkServer
    from legato.worker.leader import Leader

_ACTIVE = (StateType.PENDING, StateType.RUNNING)
# How long past a flow's timeout_seconds the worker waits before killing its process.
DEFAULT_TIMEOUT_GRACE_SECONDS = 5.0
# How many successive runs (of one deployment) a warm child process takes before the
# worker lets it exit and forks a fresh one: bounds what a flow may leak in-process.
DEFAULT_WARM_RUNS = 100


@dataclass
class _Child:
    run: FlowRun
    claim_token: str
    pid: int
    started: float
    handing_back: bool = False  # stopped at shutdown: its run goes back to the queue
    timeout: float | None = None  # the deployment's timeout_seconds
    # monotonic time after which the worker stops it: set once the child has started
    # the run (its attempt), not at the claim, so process start-up does not count
    deadline: float | None = None
    retries: int = 0  # the deployment's flow retries: attempts a timeout may take
    timed_out: bool = False
    # monotonic time after which a run asked to cancel is stopped by force
    cancel_deadline: float | None = None
    cancelled: bool = False  # killed for a cancel request: its run ends cancelled
    warm_key: str | None = None  # what a warm child may run next (see `_warm_key`)
    runs: int = 1  # runs this process has started, this one included


@dataclass
class _Idle:
    """A warm child waiting for its next run."""

    pid: int
    warm_key: str
    runs: int


class Worker:
    """Claims runs from ``queues`` and executes up to ``concurrency`` at once."""

    def __init__(
        self,
        client: Client,
        *,
        queues: tuple[str, ...] | list[str] = ("default",),
        concurrency: int = 4,
        name: str | None = None,
        lease: float | None = None,
        grace_seconds: float = 30.0,
        poll_seconds: float = 2.0,
        run_scheduler: bool = True,
        log: bool = True,
        warm_runs: int = DEFAULT_WARM_RUNS,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError(f"worker concurrency {concurrency} must be at least 1")
        queues = tuple(dict.fromkeys(q.strip() for q in queues if q and q.strip()))
        if not queues:
            raise ConfigurationError("a worker needs at least one work queue, e.g. --queue default")
        self.client = client
        self.queues = queues
        self.concurrency = concurrency
        self.name = name or f"{hostname()}-{os.getpid()}"
        self.lease = lease if lease is not None else lease_seconds()
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds
        self.timeout_grace = env_float(
            "LEGATO_WORKER_TIMEOUT_GRACE_SECONDS", DEFAULT_TIMEOUT_GRACE_SECONDS
        )
        # How often the runs of running children are looked at (taken over? asked to
        # cancel?): once a heartbeat, so a cancel stops within heartbeat + grace.
        self.watch_seconds = min(poll_seconds, env_float("LEGATO_HEARTBEAT_SECONDS", 1.0))
        self.log_enabled = log
        self.id = f"{self.name}-{new_id()[:8]}"
        self.children: dict[str, _Child] = {}
        self.warm_runs = warm_runs  # runs per warm child; 1: a new process for every run
        self.idle: dict[int, _Idle] = {}  # warm children waiting, oldest first
        self.completed = 0
        self.claimed = 0  # runs claimed (each started in a child): for --metrics-port
        # `legato worker --metrics-port`: this worker's metrics, served while it runs.
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self._queue_dry = True  # the last claim found nothing to run
        self._stop = threading.Event()
        self._leader: Leader | None = None  # schedules, sweeps, automations, notifications
        self._forkserver: ForkServer | None = None
        self._started_at = utcnow()
        if run_scheduler:
            from legato.worker.leader import Leader

            self._leader = Leader(client, holder=self.id, lease=self.lease, log=self._log)

    # -- running ----------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True, max_runs: int | None = None) -> None:
        """Work until `stop` (or SIGTERM / SIGINT); then shut down in order."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.stop())
            signal.signal(signal.SIGINT, lambda *_: self.stop())
        store = self.client.store
        self._log(
            f"worker {self.name} started: queues {', '.join(self.queues)}, "
            f"concurrency {self.concurrency}, lease {self.lease:g}s, store {store.display_url}"
        )
        self._started_at = utcnow()
        metrics = None
        if self.metrics_port is not None:
            from legato.metrics.worker import WorkerMetricsServer

            metrics = WorkerMetricsServer(
                self, store, host=self.metrics_host, port=self.metrics_port
            )
            self._log(f"worker metrics on http://{self.metrics_host}:{metrics.port}/metrics")
        try:
            self._work(store, max_runs)
        finally:
            if metrics is not None:
                metrics.close()

    @property
    def children_alive(self) -> int:
        """Child processes running a flow run now."""
        return len(self.children)

    def _work(self, store: Store, max_runs: int | None) -> None:
        while not self._stop.is_set():
            try:
                self._report()
                # The leader also wakes on new events, to evaluate automations at once.
                channels = [RUNS_QUEUED] if self._leader is None else [RUNS_QUEUED, EVENTS_STORED]
                with store.listen(channels) as listener:
                    if self._loop(listener, max_runs):
                        break
            except StoreError as exc:
                # The store is out of reach (its own retries ran out): keep the
                # children running, and try again after a pause.
                self._log(f"store unreachable, retrying in {self.poll_seconds:g}s: {exc}")
                self._stop.wait(self.poll_seconds)
        self._shutdown()

    def _loop(self, listener: ChangeListener, max_runs: int | None) -> bool:
        """Claim and watch until stopped; True when done (``max_runs`` reached)."""
        next_claim = next_watch = next_report = 0.0
        while not self._stop.is_set():
            if self._reap() and not self._queue_dry:
                next_claim = 0.0  # slots freed and runs are waiting: claim them now
            self._enforce_timeouts()
            self._enforce_cancellations()
            if max_runs is not None and self.completed >= max_runs and not self.children:
                return True
            if self._leader is not None:
                self._leader.tick()
            now = time.monotonic()
            if self.children and now >= next_watch:
                self._stop_lost_children()
                next_watch = now + self.watch_seconds
            if now >= next_report:  # the worker's own heartbeat: not one write per claim
                self._report()
                next_report = now + self.watch_seconds
            if now >= next_claim:
                self._fill_slots(max_runs)
                next_claim = now + self.poll_seconds
            timeout, due_in = self._wait_seconds(next_claim)
            notified = listener.wait(timeout)
            if self._leader is not None and any(n.channel == EVENTS_STORED for n in notified):
                self._leader.scheduler.evaluate_now()
            queued = any(n.channel == RUNS_QUEUED for n in notified)
            if len(self.children) < self.concurrency and (
                queued or (due_in is not None and due_in <= timeout)
            ):
                next_claim = 0.0  # something was queued, or falls due now: look now
        return False

    def stop(self) -> None:
        """Ask the loop to stop claiming and shut down (safe from any thread or signal)."""
        self._stop.set()

    def _wait_seconds(self, next_claim: float) -> tuple[float, float | None]:
        """How long to wait for a notification, and in how long the next run falls due."""
        wait = max(0.0, next_claim - time.monotonic())
        if self.children:
            wait = min(wait, 0.02)  # notice children ending promptly
        if self._leader is not None:
            wait = min(wait, self._leader.seconds_to_next_tick())
        due_in = None
        if len(self.children) < self.concurrency:
            due = self.client.store.next_due_time(self.queues)
            if due is not None:
                due_in = max(0.0, (due - self.client.store.clock()).total_seconds())
                wait = min(wait, due_in)
        return min(wait, self.poll_seconds), due_in

    def _fill_slots(self, max_runs: int | None) -> None:
        store = self.client.store
        while len(self.children) < self.concurrency and not self._stop.is_set():
            if max_runs is not None and self.completed + len(self.children) >= max_runs:
                return
            token = new_id()
            run = store.claim_flow_run(
                self.queues, current_owner(token), now=store.clock(), lease_seconds=self.lease
            )
            self._queue_dry = run is None
            if run is None:
                return
            self.claimed += 1
            self._start_child(run, token)

    def _warm_key(self, run: FlowRun) -> str | None:
        """What a warm child that ran ``run`` may run next: runs of the same deployment
        whose code file is unchanged (its module stays loaded in the child). None (a
        new process for each run) for runs without a deployment, or with code named by
        module, which a child could not tell apart from an edited one."""
        if self.warm_runs < 2 or run.deployment is None or not run.entrypoint:
            return None
        path = run.entrypoint.rpartition(":")[0]
        if not path.endswith(".py"):
            return None
        try:
            changed = os.stat(path).st_mtime_ns
        except OSError:
            return None
        return f"{run.deployment}\n{run.entrypoint}\n{changed}"

    def _start_child(self, run: FlowRun, token: str) -> None:
        env = {**os.environ, "LEGATO_LEASE_SECONDS": f"{self.lease:g}"}
        if self._forkserver is None:
            # Imported here: `python -m legato.worker.forkserver` must not find
            # the module already imported by this package.
            from legato.worker.forkserver import ForkServer

            self._forkserver = ForkServer()
        key = self._warm_key(run)
        idle = next((i for i in self.idle.values() if i.warm_key == key), None)
        if idle is None and self.idle and len(self.children) + len(self.idle) >= self.concurrency:
            # No idle child can take it and the processes are at the limit: let the
            # longest idle one go.
            self._retire(next(iter(self.idle.values())))
        if idle is not None:
            del self.idle[idle.pid]
        pid = self._forkserver.spawn(
            run.id,
            token,
            env,
            warm=key is not None,
            reuse=idle.pid if idle is not None else None,
        )
        child = _Child(run, token, pid, time.monotonic(), warm_key=key)
        if idle is not None and idle.pid == pid:
            child.runs = idle.runs + 1
        deployment = self.client.store.get_deployment(run.deployment) if run.deployment else None
        if deployment is not None and deployment.timeout_seconds is not None:
            # The flow enforces its timeout itself; this catches a process that
            # cannot stop (stuck in C code), a little later.
            child.timeout = deployment.timeout_seconds
            child.retries = deployment.retries
        self.children[token] = child
        late = ""
        if run.scheduled_time is not None:
            behind = (utcnow() - run.scheduled_time).total_seconds()
            if behind > 1:
                late = f", {behind:.1f}s after it was due"
            if behind > LATE_AFTER_SECONDS:
                self._note(run, f"started late: {behind:.1f}s after its scheduled time")
        again = " (claimed again: its lease lapsed)" if run.state_message else ""
        self._log(f"claimed {run.name} ({run.id}){again}{late}; pid {pid}")

    def _stop_lost_children(self) -> None:
        """Kill children whose run another worker took over (their lease lapsed while
        they were stuck): their writes are fenced off already; this frees the slot.
        Note cancel requests: a child that has not stopped ``grace_seconds`` after
        one is stopped by force (`_enforce_cancellations`)."""
        for child in list(self.children.values()):
            run = self.client.store.get_flow_run(child.run.id)
            if (
                child.deadline is None
                and child.timeout is not None
                and run is not None
                and run.state is StateType.RUNNING
                and self._owned_by(run, child)
            ):
                # Its attempt started (within a heartbeat): the kill deadline runs now.
                child.deadline = time.monotonic() + child.timeout + self.timeout_grace
            if (
                run is not None
                and run.cancel_requested
                and child.cancel_deadline is None
                and self._owned_by(run, child)
            ):
                child.cancel_deadline = time.monotonic() + self.grace_seconds
                self._log(
                    f"{run.name} ({run.id}) asked to cancel: it stops at its next task "
                    f"boundary, or is stopped in {self.grace_seconds:g}s"
                )
            if run is None or run.owner is None or self._owned_by(run, child):
                continue  # still ours, or released by the child itself (paused, asleep)
            child.handing_back = True  # nothing to record: the run is someone else's now
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._log(
                f"{run.name} ({run.id}) was taken over after its lease lapsed; "
                f"stopped its old process {child.pid}"
            )

    def _kill(self, child: _Child) -> None:
        """SIGKILL a child's process group and wait (briefly) for it to be reaped."""
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._wait_for_exit(child, 5.0)

    def _enforce_cancellations(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.cancel_deadline is None or now < child.cancel_deadline or child.cancelled:
                continue
            child.cancelled = True
            self._kill(child)
            store = self.client.store
            run = store.get_flow_run(child.run.id)
            if run is None or run.state not in _ACTIVE or not self._owned_by(run, child):
                continue  # it ended by itself meanwhile
            store.transition_flow_run(
                run.id,
                to_state=StateType.CANCELLED,
                from_states=_ACTIVE,
                now=store.clock(),
                message=f"cancelled on request; its process did not stop within "
                f"{self.grace_seconds:g}s, so the worker stopped it",
                expected_owner_token=run.owner.token if run.owner else None,
            )
            self._log(f"{run.name} ({run.id}) cancelled: stopped its process {child.pid}")

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.deadline is None or now < child.deadline or child.timed_out:
                continue
            child.timed_out = True
            self._kill(child)
            self._after_timeout(child)

    def _after_timeout(self, child: _Child) -> None:
        """Fail the run of a child killed for its timeout, or queue it again while
        the flow has retries left (any worker takes the next attempt)."""
        store = self.client.store
        run = store.get_flow_run(child.run.id)
        if run is None or run.state not in _ACTIVE or not self._owned_by(run, child):
            return
        seconds = child.timeout or 0.0
        why = (
            f"flow '{run.flow_name}' ran past its timeout_seconds={seconds:g} and did not "
            f"stop; the worker killed its process (attempt {run.attempts})"
        )
        owner_token = run.owner.token if run.owner else None
        if run.retries_used < child.retries and owner_token is not None:
            # A retry like any other: counted in the store, due now, any worker takes it.
            try:
                store.retry_flow_run(
                    run.id,
                    owner_token,
                    error=ErrorInfo(type="FlowTimeoutError", message=why),
                    message=why + "; queued again for a retry",
                    wake_at=store.clock(),
                )
            except RunOwnershipLost:
                return  # another worker took it over meanwhile: it is theirs now
        else:
            store.transition_flow_run(
                run.id,
                to_state=StateType.FAILED,
                from_states=_ACTIVE,
                now=self.client.store.clock(),
                message=why,
                error=ErrorInfo(type="FlowTimeoutError", message=why),
                expected_owner_token=owner_token,
            )
        self._log(f"{run.name} ({run.id}) timed out: {why}")

    def _reap(self) -> int:
        """Settle the runs of children that ended; how many ended."""
        if self._forkserver is None:
            return 0
        exits = self._forkserver.exits
        ended = 0
        while not exits.empty():
            token, pid, code, idle = exits.get_nowait()
            child = self.children.pop(token, None) if token else None
            if not idle:
                self.idle.pop(pid, None)  # the process is gone
            if child is None:
                continue
            ended += 1
            self.completed += 1
            self._settle(child, code)
            if idle:
                self._keep_warm(child)
        return ended

    def _keep_warm(self, child: _Child) -> None:
        """A warm child finished its run and waits: keep it for a next run of the same
        deployment, unless it was stopped or has run its share."""
        stopped = child.handing_back or child.timed_out or child.cancelled
        idle = _Idle(child.pid, child.warm_key or "", child.runs)
        if stopped or child.warm_key is None or child.runs >= self.warm_runs or self._stop.is_set():
            self._retire(idle)
        else:
            self.idle[child.pid] = idle

    def _retire(self, idle: _Idle) -> None:
        self.idle.pop(idle.pid, None)
        if self._forkserver is not None:
            self._forkserver.retire(idle.pid)

    def _settle(self, child: _Child, code: int) -> None:
        """After a child exits: a run it left active crashed with it."""
        run = self.client.store.get_flow_run(child.run.id)
        if run is None or child.handing_back or child.timed_out or child.cancelled:
            return
        if run.state in _ACTIVE and self._owned_by(run, child):
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            self.client.store.transition_flow_run(
                run.id,
                to_state=StateType.CRASHED,
                from_states=_ACTIVE,
                now=self.client.store.clock(),
                message=f"its process (pid {child.pid}) {how} while the run was "
                f"{run.state.value}; resume it with `legato resume {run.id}`",
                expected_owner_token=run.owner.token if run.owner else None,
            )
            self._log(f"{run.name} ({run.id}) crashed: process {how}")
            return
        self._log(f"{run.name} ({run.id}) ended {run.state.value}")

    def _owned_by(self, run: FlowRun, child: _Child) -> bool:
        owner = run.owner
        if owner is None:
            return False
        if owner.token == child.claim_token:
            return True
        return owner.host == hostname() and owner.pid == child.pid

    # -- shutting down ----------------------------------------------------------------

    def _shutdown(self) -> None:
        if self.children:
            self._log(
                f"stopping: waiting up to {self.grace_seconds:g}s for "
                f"{len(self.children)} running flow run(s)"
            )
        deadline = time.monotonic() + self.grace_seconds
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        for child in list(self.children.values()):
            self._hand_back(child)
        self.children.clear()
        if self._forkserver is not None:
            self._forkserver.close()
            self._forkserver = None
        if self._leader is not None:
            self._leader.close()
        self._report(stopped=True)
        self._log(f"worker {self.name} stopped")

    def _hand_back(self, child: _Child) -> None:
        """Stop a child that outlived the grace period and queue its run again."""
        child.handing_back = True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(child.pid, sig)  # the child leads its own process group
            except (ProcessLookupError, PermissionError):
                break
            if self._wait_for_exit(child, 5.0):
                break
        run = self.client.store.get_flow_run(child.run.id)
        if run is None or run.state not in _ACTIVE or not self._owned_by(run, child):
            return
        self.client.store.transition_flow_run(
            run.id,
            to_state=StateType.SCHEDULED,
            from_states=_ACTIVE,
            now=self.client.store.clock(),
            message=f"handed back by worker {self.name} at shutdown; another worker resumes it",
            expected_owner_token=run.owner.token if run.owner else None,
        )
        self._log(f"handed {run.name} ({run.id}) back to queue {run.work_queue}")

    def _wait_for_exit(self, child: _Child, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._reap()
            if child.claim_token not in self.children:
                return True
            time.sleep(0.02)
        return False

    def _report(self, *, stopped: bool = False) -> None:
        """This worker's heartbeat in the store, for `legato workers` and the UI."""
        now = utcnow()
        self.client.store.save_worker(
            WorkerInfo(
                id=self.id,
                name=self.name,
                host=hostname(),
                pid=os.getpid(),
                queues=self.queues,
                concurrency=self.concurrency,
                started=self._started_at,
                heartbeat_at=now,
                running=len(self.children),
                stopped_at=now if stopped else None,
            )
        )

    def _note(self, run: FlowRun, message: str) -> None:
        """A log line in the run itself (shown by `legato logs`), from this worker."""
        record = LogRecord(
            flow_run_id=run.id,
            timestamp=utcnow(),
            level=logging.WARNING,
            message=message,
            logger=f"legato.worker.{self.name}",
        )
        self.client.store.append_logs([record])

    def _log(self, message: str) -> None:
        if self.log_enabled:
            stamp = datetime.now().strftime("%H:%M:%S")
            print(f"{stamp} {message}", file=sys.stderr, flush=True)
