"""Task runners: where submitted task calls execute.

`ProcessPoolTaskRunner` runs only the function bodies of submitted calls in
other processes; the flow's process records everything (engine/remote.py).

`ThreadPoolTaskRunner` keeps its own small pool instead of the standard
library's executor: a submit is one queue put and a completion one lock
release, which matters when a `.map` fans out to thousands of tiny tasks
(the standard executor spends more time per item than legato's engine does).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.connection import Connection

    from legato.engine.context import FlowRunContext
    from legato.engine.task_engine import TaskCall
    from legato.tasks import Task

_PENDING = object()


class TaskHandle:
    """The completion of one submitted call: a value or an exception, once.

    Waiting uses a lock held until completion, the cheapest primitive there is;
    callbacks let `as_completed` learn of completions without polling.
    """

    __slots__ = ("_callbacks", "_exception", "_lock", "_value")

    def __init__(self) -> None:
        self._value: Any = _PENDING
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[TaskHandle], None]] | None = None
        self._lock = threading.Lock()
        self._lock.acquire()

    def done(self) -> bool:
        return self._value is not _PENDING or self._exception is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (or ``timeout`` seconds); returns whether it is done."""
        if self.done():
            return True
        if self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            self._lock.release()  # let the next waiter through
            return True
        return self.done()

    def result(self) -> Any:
        self.wait()
        if self._exception is not None:
            raise self._exception
        return self._value

    def exception(self) -> BaseException | None:
        self.wait()
        return self._exception

    def add_done_callback(self, fn: Callable[[TaskHandle], None]) -> None:
        with _callback_lock:
            if not self.done():
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def _finish(self, value: Any, exception: BaseException | None) -> None:
        with _callback_lock:
            self._exception = exception
            self._value = None if exception is not None else value
            callbacks, self._callbacks = self._callbacks, None
        self._lock.release()
        for fn in callbacks or ():
            try:
                fn(self)
            except Exception:
                pass


_callback_lock = threading.Lock()


def completed_handle(value: Any) -> TaskHandle:
    handle = TaskHandle()
    handle._finish(value, None)
    return handle


class ThreadPoolTaskRunner:
    """Runs submitted task calls on a pool of threads (the default).

    ``max_workers`` defaults to ``min(32, cpus + 4)``, suited to tasks that wait
    on I/O. A flow run gets its own copy of the runner; threads start as work
    arrives and stop when the flow run ends.
    """

    # Whether `submit_call` sends task bodies elsewhere (checked once per submit).
    runs_bodies_remotely: ClassVar[bool] = False

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            from legato.errors import ConfigurationError

            raise ConfigurationError(
                f"{type(self).__name__}(max_workers={max_workers}) needs at least 1 worker"
            )
        self.max_workers = max_workers
        self._limit = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._queue: SimpleQueue[tuple[TaskHandle, contextvars.Context, Callable[[], Any]] | None]
        self._queue = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for work
        self._queued = 0  # calls submitted and not yet picked up
        self._lock = threading.Lock()

    def duplicate(self) -> ThreadPoolTaskRunner:
        return type(self)(max_workers=self.max_workers)

    def submit_call(self, call: TaskCall, work: Callable[[], Any]) -> TaskHandle:
        """Submit ``work`` (which runs ``call``); a remote runner also decides where the
        task's function body runs."""
        return self.submit(work)

    def submit(self, fn: Callable[[], Any]) -> TaskHandle:
        handle = TaskHandle()
        with self._lock:
            # Every queued call needs a thread of its own (up to the limit): a call
            # may block until another queued call runs.
            self._queued += 1
            if self._queued > self._idle and len(self._threads) < self._limit:
                thread = threading.Thread(
                    target=self._work, name=f"legato-task-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                self._idle += 1
                thread.start()
        self._queue.put((handle, contextvars.copy_context(), fn))
        return handle

    def _work(self) -> None:
        queue = self._queue
        lock = self._lock
        while True:
            item = queue.get()
            if item is None:
                return
            with lock:
                self._queued -= 1
                self._idle -= 1
            handle, context, fn = item
            try:
                value = context.run(fn)
            except BaseException as exc:
                handle._finish(None, exc)
            else:
                handle._finish(value, None)
            with lock:
                self._idle += 1

    def shutdown(self, wait: bool = True) -> None:
        """Stop the threads after the queued work (``wait``) or leave them to finish alone."""
        threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()
        self._idle = 0
        self._queued = 0

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"


class ProcessPoolTaskRunner(ThreadPoolTaskRunner):
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

    runs_bodies_remotely: ClassVar[bool] = True

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers=max_workers)
        workers = max_workers or os.cpu_count() or 1
        # Waiting threads are cheap: enough of them to keep every process busy.
        self._limit = max(32, 2 * workers)
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        # id(task) -> (task, its copy whose fn sends the body to the pool)
        self._twins: dict[int, tuple[Task[Any, Any], Task[Any, Any]]] = {}
        self._unfinished: set[Future[bytes]] = set()  # bodies sent and not yet answered
        self._alive: tuple[Connection, Connection] | None = None

    def submit_call(self, call: TaskCall, work: Callable[[], Any]) -> TaskHandle:
        call.task = self._twin(call.task)
        return self.submit(work)

    def _twin(self, task: Task[Any, Any]) -> Task[Any, Any]:
        entry = self._twins.get(id(task))
        if entry is not None and entry[0] is task:
            return entry[1]
        import copy
        import functools

        twin = copy.copy(task)
        twin.__dict__["_code_hash"] = task.code_hash  # hashes the user's code, not ours
        body = self._async_body(task) if task.is_async else self._sync_body(task)
        twin.fn = functools.update_wrapper(body, task.fn)
        self._twins[id(task)] = (task, twin)
        return twin

    def _sync_body(self, task: Task[Any, Any]) -> Callable[..., Any]:
        timeout = task.timeout_seconds

        def body(*args: Any, **kwargs: Any) -> Any:
            from legato.engine.remote import unpack_outcome

            future, pool, flow_ctx = self._send(task, args, kwargs)
            if timeout is None:
                packed = self._wait(future, pool)
            else:
                packed = self._wait_interruptibly(future, pool)
            return unpack_outcome(packed, flow_ctx)

        return body

    def _async_body(self, task: Task[Any, Any]) -> Callable[..., Any]:
        async def body(*args: Any, **kwargs: Any) -> Any:
            import asyncio
            from concurrent.futures.process import BrokenProcessPool

            from legato.engine.remote import unpack_outcome

            future, pool, flow_ctx = self._send(task, args, kwargs)
            try:
                packed = await asyncio.wrap_future(future)
            except BrokenProcessPool:
                self._recycle(pool)
                raise
            return unpack_outcome(packed, flow_ctx)

        return body

    def _send(
        self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Future[bytes], ProcessPoolExecutor, FlowRunContext]:
        from concurrent.futures.process import BrokenProcessPool

        from legato.engine.context import TASK_CONTEXT
        from legato.engine.remote import BodyContext, pack_body, run_body

        task_ctx = TASK_CONTEXT.get()
        if task_ctx is None:  # the engine always sets it around an attempt
            from legato.errors import TaskCallError

            raise TaskCallError(
                f"task '{task.name}': a ProcessPoolTaskRunner body was called outside its "
                f"task run; submit the task from a flow instead"
            )
        flow_ctx = task_ctx.flow_ctx
        context = BodyContext(
            flow_run_id=flow_ctx.run.id,
            flow_name=flow_ctx.run.flow_name,
            task_name=task.name,
            task_run_id=task_ctx.task_run_id,
            call_key=task_ctx.call_key,
            log_prints=task_ctx.log_prints,
        )
        payload = pack_body(task.fn, args, kwargs, task.parameter_names, context)
        pool = self._executor()
        try:
            future = pool.submit(run_body, payload)
        except BrokenProcessPool:
            self._recycle(pool)
            pool = self._executor()
            future = pool.submit(run_body, payload)
        with self._pool_lock:
            self._unfinished.add(future)
        future.add_done_callback(self._answered)
        return future, pool, flow_ctx

    def _answered(self, future: Future[bytes]) -> None:
        with self._pool_lock:
            self._unfinished.discard(future)

    def _wait(self, future: Future[bytes], pool: ProcessPoolExecutor) -> bytes:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result()
        except BrokenProcessPool:
            self._recycle(pool)  # a process died: the next attempt gets a fresh pool
            raise

    def _wait_interruptibly(self, future: Future[bytes], pool: ProcessPoolExecutor) -> bytes:
        """Wait in short slices, so that a timeout's interrupt reaches this thread and the
        pool future is cancelled if its body has not started."""
        from concurrent.futures import TimeoutError as WaitTimeout

        try:
            while True:
                try:
                    return self._wait_slice(future, pool)
                except WaitTimeout:
                    continue
        except BaseException:
            future.cancel()  # one already running is stopped when the flow run ends
            raise

    def _wait_slice(self, future: Future[bytes], pool: ProcessPoolExecutor) -> bytes:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result(timeout=0.05)
        except BrokenProcessPool:
            self._recycle(pool)
            raise

    def _executor(self) -> ProcessPoolExecutor:
        pool = self._pool
        if pool is not None:
            return pool
        with self._pool_lock:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                methods = multiprocessing.get_all_start_methods()
                method = "forkserver" if "forkserver" in methods else "spawn"
                from legato.engine.remote import watch_driver

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

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        with self._pool_lock:
            pool, self._pool = self._pool, None
            unfinished = [future for future in self._unfinished if not future.done()]
            self._unfinished = set()
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
        self._twins.clear()

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
