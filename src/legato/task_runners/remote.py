"""The base of runners that send task bodies elsewhere: processes, Dask, Ray.

Only the body moves: the flow's process (the driver) keeps call keys, replay,
caching, limits, retries, timeouts and the task-run records (see
docs/architecture.md, "Remote task runners: record on the driver"). Each
submitted call runs the ordinary task engine on a thread of the driver; when
the engine calls the task's function, a stand-in packs the body
(`engine.remote.pack_body`), hands it to the subclass (`_send_payload`, which
answers with a `concurrent.futures.Future` of the packed outcome) and waits.
A subclass says how to start its backend, send a payload and stop.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, ClassVar

from legato.task_runners.threads import TaskHandle, ThreadPoolTaskRunner

if TYPE_CHECKING:
    from legato.engine.context import FlowRunContext
    from legato.engine.task_engine import TaskCall
    from legato.tasks import Task


class RemoteTaskRunner(ThreadPoolTaskRunner, ABC):
    """Runs the function bodies of submitted task calls outside the flow's process."""

    runs_bodies_remotely: ClassVar[bool] = True

    def __init__(self, max_workers: int | None = None, *, in_flight: int = 32) -> None:
        super().__init__(max_workers=max_workers)
        # Driver threads only wait on remote bodies: ``in_flight`` of them bound how
        # many bodies are out at once.
        self._limit = in_flight
        self._send_lock = threading.Lock()
        # id(task) -> (task, its copy whose fn sends the body away)
        self._twins: dict[int, tuple[Task[Any, Any], Task[Any, Any]]] = {}
        self._unfinished: set[Future[bytes]] = set()  # bodies sent and not yet answered
        # id(task) -> (task, its function pickled once)
        self._functions: dict[int, tuple[Task[Any, Any], bytes]] = {}
        self._watcher: threading.Thread | None = None  # see _watch
        self._stopping = threading.Event()
        self._storage: str | None = None  # read from the settings on the first send
        self._result_threshold = 0

    # --- what a subclass provides ------------------------------------------------------

    @abstractmethod
    def _send_payload(self, payload: bytes, task: Task[Any, Any]) -> Future[bytes]:
        """Start running ``payload`` (`engine.remote.run_body`'s argument) elsewhere."""

    @abstractmethod
    def _stop(self, unfinished: list[Future[bytes]], wait: bool) -> None:
        """Release the backend; ``unfinished`` bodies were abandoned and must be stopped."""

    # --- the shared machinery ----------------------------------------------------------

    def submit_call(self, call: TaskCall, work: Callable[[], Any]) -> TaskHandle:
        call.task = self._twin(call.task)
        return self.submit(work)

    def _twin(self, task: Task[Any, Any]) -> Task[Any, Any]:
        entry = self._twins.get(id(task))
        if entry is not None and entry[0] is task:
            return entry[1]
        import copy
        import functools
        import sys

        # A flow file loaded by legato (`legato run file.py:flow`) cannot be imported
        # where the body runs: its functions travel by value instead of by name.
        module = sys.modules.get(getattr(task.fn, "__module__", None) or "")
        if module is not None and getattr(module, "__legato_path__", None):
            import cloudpickle

            if module.__name__ not in cloudpickle.list_registry_pickle_by_value():
                cloudpickle.register_pickle_by_value(module)
        twin = copy.copy(task)
        twin.__dict__["_code_hash"] = task.code_hash  # hashes the user's code, not ours
        body = self._async_body(task) if task.is_async else self._sync_body(task)
        twin.fn = functools.update_wrapper(body, task.fn)
        self._twins[id(task)] = (task, twin)
        return twin

    def _sync_body(self, task: Task[Any, Any]) -> Callable[..., Any]:
        # A timeout's interrupt is seen at the end of a slice: short slices for a task
        # with a timeout. Otherwise the watcher wakes waiters on a cancel request (by
        # cancelling their futures), and hundreds of waiting threads must not keep
        # waking up: the GIL is shared with the cluster's scheduler when it runs in
        # this process (measured: 50 ms slices made a Dask map 1.4x slower).
        slice_seconds = 0.05 if task.timeout_seconds is not None else 2.0

        def body(*args: Any, **kwargs: Any) -> Any:
            from legato.engine.remote import unpack_outcome

            future, flow_ctx = self._send(task, args, kwargs)
            return unpack_outcome(self._wait(future, slice_seconds), flow_ctx)

        return body

    def _async_body(self, task: Task[Any, Any]) -> Callable[..., Any]:
        async def body(*args: Any, **kwargs: Any) -> Any:
            import asyncio

            from legato.engine.remote import unpack_outcome

            future, flow_ctx = self._send(task, args, kwargs)
            try:
                packed = await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                future.cancel()
                raise
            return unpack_outcome(packed, flow_ctx)

        return body

    def _send(
        self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Future[bytes], FlowRunContext]:
        from legato.engine.context import TASK_CONTEXT
        from legato.engine.remote import BodyContext, pack_body, pack_function

        task_ctx = TASK_CONTEXT.get()
        if task_ctx is None:  # the engine always sets it around an attempt
            from legato.errors import TaskCallError

            raise TaskCallError(
                f"task '{task.name}': a {type(self).__name__} body was called outside its "
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
            runner=type(self).__name__,
            result_storage=self._result_storage() if task.persist_result else None,
            result_threshold=self._result_threshold,
        )
        function = self._functions.get(id(task))
        if function is None or function[0] is not task:
            function = self._functions[id(task)] = (task, pack_function(task.fn, context))
        payload = pack_body(function[1], args, kwargs, task.parameter_names, context)
        future = self._send_payload(payload, task)
        with self._send_lock:
            self._unfinished.add(future)
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, args=(flow_ctx,), name="legato-remote-cancel", daemon=True
                )
                self._watcher.start()
        future.add_done_callback(self._answered)
        return future, flow_ctx

    def _result_storage(self) -> str:
        """Where large results go (LEGATO_RESULT_STORAGE), read once per runner."""
        if self._storage is None:
            from legato.settings import remote_result_threshold, result_storage

            self._result_threshold = remote_result_threshold()
            self._storage = result_storage()
        return self._storage

    def _watch(self, flow_ctx: FlowRunContext) -> None:
        """Cancel the bodies out once the flow run is asked to cancel (or is lost): their
        waiting threads wake at once and end the calls cancelled (see `_wait`)."""
        while not self._stopping.wait(0.1):
            if flow_ctx.cancel_requested or flow_ctx.lost:
                with self._send_lock:
                    out = list(self._unfinished)
                for future in out:
                    future.cancel()

    def _answered(self, future: Future[bytes]) -> None:
        with self._send_lock:
            self._unfinished.discard(future)

    def _wait(self, future: Future[bytes], slice_seconds: float = 0.05) -> bytes:
        """Wait in short slices, so that a timeout's interrupt reaches this thread and a
        cancel request for the flow run ends the wait (the call then ends cancelled);
        either way the remote future is cancelled."""
        from concurrent.futures import CancelledError
        from concurrent.futures import TimeoutError as WaitTimeout

        from legato.engine.context import TASK_CONTEXT

        task_ctx = TASK_CONTEXT.get()
        flow_ctx = task_ctx.flow_ctx if task_ctx is not None else None
        try:
            while True:
                try:
                    return future.result(timeout=slice_seconds)
                except (WaitTimeout, CancelledError):
                    if flow_ctx is not None and (flow_ctx.cancel_requested or flow_ctx.lost):
                        flow_ctx.check_cancelled()
                    if future.cancelled():
                        raise
        except BaseException:
            future.cancel()
            raise

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        self._stopping = threading.Event()
        with self._send_lock:
            unfinished = [future for future in self._unfinished if not future.done()]
            self._unfinished = set()
        self._stop(unfinished, wait)
        self._twins.clear()
        self._functions.clear()
