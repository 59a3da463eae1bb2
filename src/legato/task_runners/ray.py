"""`RayTaskRunner`: task bodies as Ray tasks (extra ``legato[ray]``).

The arguments are those of Prefect's ``prefect_ray.RayTaskRunner``. Only the
body moves (`legato.task_runners.remote`): each submitted call is one Ray task
running `legato.engine.remote.run_body`, whose ``ObjectRef`` is bridged to a
`concurrent.futures.Future`; the flow's process records everything.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from legato.errors import ConfigurationError, MissingExtraError
from legato.task_runners.remote import RemoteTaskRunner

if TYPE_CHECKING:
    from legato.tasks import Task

__all__ = ["RayTaskRunner"]

# Ray is one connection per process: runners of concurrent flow runs share it. The
# connection legato opened is closed when the last runner using it stops.
_connection_lock = threading.Lock()
_users = 0  # runners currently using the connection
_opened_by_legato = False

# A body lost with its worker process (or node) is run again by Ray this many times:
# nothing of it was recorded yet. Exceptions raised by the body are not Ray failures
# (`run_body` packs them), so they reach the driver, whose `retries` decide.
_WORKER_LOSS_RETRIES = 3


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", "RayTaskRunner") from None
    return ray


def _ray_options(task: Task[Any, Any]) -> dict[str, Any]:
    """Ray task options for one call of ``task``: its resources, Ray's retries."""
    options: dict[str, Any] = {"max_retries": _WORKER_LOSS_RETRIES, "retry_exceptions": False}
    custom: dict[str, float] = {}
    for name, amount in task.resources.items():
        if name == "CPU":
            options["num_cpus"] = amount
        elif name == "GPU":
            options["num_gpus"] = amount
        else:
            custom[name] = amount
    if custom:
        options["resources"] = custom
    return options


class RayTaskRunner(RemoteTaskRunner):
    """Runs the function bodies of submitted task calls as Ray tasks.

    If this process is not connected to Ray yet, the first submit calls
    ``ray.init(address=address, **init_kwargs)``: without an address that
    starts a local Ray instance (or joins the one ``RAY_ADDRESS`` names). A
    connection opened this way is closed when the flow run ends; one that
    existed before is used and left alone. A task's ``resources`` become Ray
    options ("CPU" -> ``num_cpus``, "GPU" -> ``num_gpus``, any other name ->
    ``resources``); a call needing what no node has waits (bound it with the
    task's ``timeout_seconds``). ``in_flight`` bounds the bodies out at once.
    """

    def __init__(
        self,
        address: str | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        *,
        in_flight: int = 256,
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address):
            raise ConfigurationError(
                f"RayTaskRunner(address={address!r}): give a Ray address such as "
                f"'127.0.0.1:6379' or 'ray://head:10001', or None for a local Ray instance"
            )
        if init_kwargs is None:
            init_kwargs = {}
        if not isinstance(init_kwargs, Mapping) or not all(isinstance(k, str) for k in init_kwargs):
            raise ConfigurationError(
                f"RayTaskRunner(init_kwargs={init_kwargs!r}): expected a dict of ray.init "
                f"keyword arguments (str keys) or None"
            )
        if "address" in init_kwargs:
            raise ConfigurationError(
                "RayTaskRunner: give the address as RayTaskRunner(address=...), not in init_kwargs"
            )
        if not isinstance(in_flight, int) or isinstance(in_flight, bool) or in_flight < 1:
            raise ConfigurationError(
                f"RayTaskRunner(in_flight={in_flight!r}) needs a positive integer"
            )
        super().__init__(max_workers=in_flight, in_flight=in_flight)
        self.address = address
        self.init_kwargs = dict(init_kwargs)
        self.in_flight = in_flight
        self._start_lock = threading.Lock()
        self._remote: Any = None  # the Ray remote function running `run_body`
        self._refs: dict[Future[bytes], Any] = {}  # bridge -> ObjectRef
        self._options: dict[int, tuple[Task[Any, Any], Any]] = {}  # id(task) -> options

    def duplicate(self) -> RayTaskRunner:
        return type(self)(
            address=self.address, init_kwargs=dict(self.init_kwargs), in_flight=self.in_flight
        )

    # --- the backend ---------------------------------------------------------------------

    def _started(self) -> Any:
        remote = self._remote
        if remote is None:
            with self._start_lock:
                if self._remote is None:
                    self._remote = self._start()
                remote = self._remote
        return remote

    def _start(self) -> Any:
        global _users, _opened_by_legato
        ray = _ray()
        from legato.engine.remote import run_body

        with _connection_lock:
            if not ray.is_initialized():
                ray.init(address=self.address, **self.init_kwargs)
                _opened_by_legato = True
            _users += 1
        return ray.remote(run_body)

    def _remote_for(self, task: Task[Any, Any]) -> Any:
        """The remote function with ``task``'s options, made once per task."""
        remote = self._started()
        entry = self._options.get(id(task))
        if entry is None or entry[0] is not task:
            entry = (task, remote.options(name=task.name, **_ray_options(task)))
            self._options[id(task)] = entry
        return entry[1]

    def _send_payload(self, payload: bytes, task: Task[Any, Any]) -> Future[bytes]:
        ray = _ray()
        ref = self._remote_for(task).remote(payload)
        bridge: Future[bytes] = Future()
        with self._send_lock:
            self._refs[bridge] = ref

        def answered(done: Future[Any]) -> None:
            with self._send_lock:
                self._refs.pop(bridge, None)
            if not bridge.set_running_or_notify_cancel():
                return  # cancelled meanwhile (a timeout, a cancelled run)
            try:
                bridge.set_result(done.result())
            except BaseException as exc:  # RayTaskError, WorkerCrashedError, ...
                bridge.set_exception(exc)

        def cancelled(done: Future[bytes]) -> None:
            if done.cancelled():
                with self._send_lock:
                    self._refs.pop(bridge, None)
                # force: a running body's worker process is killed (Python code cannot
                # be interrupted otherwise); Ray does not retry a cancelled task.
                ray.cancel(ref, force=True)

        bridge.add_done_callback(cancelled)
        ref.future().add_done_callback(answered)
        return bridge

    def _stop(self, unfinished: list[Future[bytes]], wait: bool) -> None:
        global _users, _opened_by_legato
        for future in unfinished:
            future.cancel()  # its Ray task is cancelled (force: the worker is killed)
        with self._send_lock:
            left = list(self._refs.values())
            self._refs.clear()
        with self._start_lock:
            started, self._remote = self._remote is not None, None
            self._options.clear()
        if not started:
            return
        ray = _ray()
        for ref in left:
            ray.cancel(ref, force=True)
        with _connection_lock:
            _users -= 1
            if _users == 0 and _opened_by_legato:
                _opened_by_legato = False
                ray.shutdown()

    def __repr__(self) -> str:
        where = f"address={self.address!r}" if self.address else "local Ray"
        return f"RayTaskRunner({where})"
