"""`ProcessPoolTaskRunner`: task bodies in a pool of local processes."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from legato.task_runners.remote import RemoteTaskRunner

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.connection import Connection

    from legato.tasks import Task


class ProcessPoolTaskRunner(RemoteTaskRunner):
    """Runs the function bodies of submitted task calls in a pool of processes.

    For CPU-bound tasks. Only the body moves: the flow's process keeps call keys,
    replay, caching, limits, retries, timeouts and the task-run records (see
    docs/architecture.md, "Remote task runners: record on the driver"). Each
    submitted call waits on a thread of this process while its body runs in a
    `concurrent.futures.ProcessPoolExecutor` (forkserver start method, spawn where
    there is none) of ``max_workers`` processes (default: the number of CPUs),
    started on first use and stopped when the flow run ends. Arguments, results
    and exceptions travel with cloudpickle; direct calls (``task(...)``) still run
    in the flow's process.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        workers = max_workers or os.cpu_count() or 1
        # Waiting threads are cheap: enough of them to keep every process busy.
        super().__init__(max_workers=max_workers, in_flight=max(32, 2 * workers))
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._alive: tuple[Connection, Connection] | None = None

    def _send_payload(self, payload: bytes, task: Task[Any, Any]) -> Future[bytes]:
        from concurrent.futures.process import BrokenProcessPool

        from legato.engine.remote import run_body

        pool = self._executor()
        try:
            return pool.submit(run_body, payload)
        except BrokenProcessPool:  # a process died: this and later calls get a fresh pool
            self._recycle(pool)
            return self._executor().submit(run_body, payload)

    def _executor(self) -> ProcessPoolExecutor:
        pool = self._pool
        if pool is not None:
            return pool
        with self._pool_lock:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                from legato.engine.remote import watch_driver

                methods = multiprocessing.get_all_start_methods()
                method = "forkserver" if "forkserver" in methods else "spawn"
                context = multiprocessing.get_context(method)
                if self._alive is None:
                    # Pool processes watch the read end: they exit if this process dies.
                    self._alive = context.Pipe(duplex=False)
                self._pool = ProcessPoolExecutor(
                    max_workers=self._workers,
                    mp_context=context,
                    initializer=watch_driver,
                    initargs=(self._alive[0],),
                )
            return self._pool

    def _recycle(self, broken: ProcessPoolExecutor) -> None:
        with self._pool_lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)

    def _stop(self, unfinished: list[Future[bytes]], wait: bool) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            if unfinished:
                # Bodies abandoned by a timeout (or by a flow run that timed out): the
                # standard pool cannot stop one process, so stop them all.
                _kill_processes(pool)
                wait = False
            pool.shutdown(wait=wait, cancel_futures=not wait)
        if self._alive is not None:
            for end in self._alive:
                end.close()
            self._alive = None

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"


def _kill_processes(pool: ProcessPoolExecutor) -> None:
    import signal

    processes = dict(getattr(pool, "_processes", None) or {})
    for pid in processes:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue  # ended already
