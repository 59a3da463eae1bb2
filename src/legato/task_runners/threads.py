"""The thread runner (the default) and the handle of a submitted call.

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

from legato.engine.commit_pending import CommitPending

if TYPE_CHECKING:
    from legato.engine.task_engine import TaskCall

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
                if type(value) is CommitPending:
                    value.attach(handle)  # finished once its record is committed
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
